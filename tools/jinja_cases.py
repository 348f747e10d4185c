"""The Jinja cases test_jinja renders and checks byte for byte against transformers' renderer
(tools/make_chat_fixtures.py writes them with their renderings into test/data/chat/).

Each case: a name, a template and its variables. A case whose rendering raises records the
error instead (ours must fail on it too, in one line). LLAMA3_2 is Meta's Llama 3.2 Instruct
chat template as its tokenizer_config.json ships it.
"""

LLAMA3_2 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Today's weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}

CONVERSATION = [{"role": "system", "content": "  Be brief. "},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Sunny, 21 °C.\n"}]

# Templates that exercise one part of the language each, with the variables they read.
FEATURES = [
    ("whitespace_control", "a  {%- if x %}  b  {%- endif -%}  c\n  {% if x %}\n  d\n  {% endif %}\n{{- ' e ' -}}\n f",
     {"x": True}),
    ("lstrip_and_trim_blocks", "line\n    {% for i in [1, 2] %}\n    item {{ i }}\n    {% endfor %}\n  {# note #}\nend {%+ if 1 %}kept{% endif +%}\nafter",
     {}),
    ("loop_variables", "{% for m in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}"
     "/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }}"
     "/{{ loop.cycle('odd', 'even') }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("loop_filter_else_break", "{% for x in xs if x is odd %}{% if x > 5 %}{% break %}{% endif %}"
     "{% if x == 3 %}{% continue %}{% endif %}{{ x }},{% else %}none{% endfor %}|"
     "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {"xs": [1, 2, 3, 4, 5, 7, 9]}),
    ("scoping_and_namespace", "{% set x = 1 %}{% set ns = namespace(found=false, n=0) %}"
     "{% for i in [1, 2, 3] %}{% set x = i %}{% set ns.n = ns.n + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}"
     "{{ x }} {{ ns.found }} {{ ns.n }}{% if true %}{% set y = 'set in if' %}{% endif %} {{ y }}", {}),
    ("set_block_and_tuple_unpack", "{% set a, b = [1, 'two'] %}{% set block %}[{{ a }}-{{ b }}]{% endset %}{{ block }}"
     "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("macro", "{% macro tag(name, value='v', close=true) %}<{{ name }}>{{ value }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}"
     "{{ tag('a') }}{{ tag('b', 'x') }}{{ tag('c', close=false) }}{{ tag(name='d', value=g) }}", {"g": 5}),
    ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 - 4 }} {{ 1.5 + 1 }}"
     " {{ 10 / 4 * 2 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 3.0 }} {{ -x }}", {"x": 4}),
    ("comparisons_and_logic", "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'x' in 'xyz' }} {{ 3 not in [1, 2] }}"
     " {{ 'k' in d }} {{ none is none }} {{ x is defined }} {{ y is not defined }} {{ (1 and 0) or 'z' }}"
     " {{ not 0 }} {{ 'yes' if x else 'no' }} {{ 'yes' if y else 'no' }} {{ [1, 2] == [1, 2] }} {{ true == 1 }}",
     {"d": {"k": 1}, "x": 0}),
    ("string_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' H') }}|{{ s.split() }}|"
     "{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ s.upper() }}|{{ s.lower() }}|{{ 'hello world'.title() }}|"
     "{{ 'hello'.capitalize() }}|{{ s.replace('l', 'L') }}|{{ s.startswith('  He') }}|{{ s.endswith(('x', 'd ')) }}|"
     "{{ s.find('o') }}|{{ s.count('l') }}|{{ '-'.join(['a', 'b']) }}|{{ 'a\nb\r\nc'.splitlines() }}|{{ '  '.isspace() }}",
     {"s": "  Hello world "}),
    ("filters", "{{ s | trim }}|{{ s | length }}|{{ xs | length }}|{{ xs | first }}|{{ xs | last }}|{{ xs | join(', ') }}|"
     "{{ u | default('dflt') }}|{{ '' | default('e', true) }}|{{ xs | reverse | list }}|{{ 'abc' | reverse }}|"
     "{{ xs | sort }}|{{ xs | unique | list }}|{{ xs | min }}|{{ xs | max }}|{{ xs | sum }}|{{ '3' | int + 1 }}|"
     "{{ '2.5' | float }}|{{ -3 | abs }}|{{ 2.567 | round(2) }}|{{ 'Hi' | upper }}{{ 'Hi' | lower }}|"
     "{{ 'a b' | replace(' ', '_') }}|{{ 5 | string }}|{{ d | items | list }}|{{ d | dictsort }}|{{ 'x\ny' | indent(2, true) }}",
     {"s": " héllo ", "xs": [3, 1, 2, 3], "d": {"b": 1, "a": 2}}),
    ("select_and_map", "{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|"
     "{{ ms | rejectattr('role', 'eq', 'user') | list | length }}|{{ xs | select('odd') | list }}|"
     "{{ xs | reject('even') | list }}|{{ ms | map(attribute='role') | join(',') }}|{{ ['a', 'B'] | map('upper') | list }}|"
     "{{ ms | selectattr('tool') | list | length }}", {"ms": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
                                                           {"role": "user", "content": "u2", "tool": 1}], "xs": [1, 2, 3, 4]}),
    ("tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\\\n' | tojson }}|{{ [1.5, none, true] | tojson }}|"
     "{{ {} | tojson }}|{{ d | tojson(sort_keys=true) }}", {"d": {"z": [1, {"y": "ü"}], "a": None}}),
    ("subscripts_and_slices", "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::2] }} {{ xs[::-1] }} {{ s[1:3] }}"
     " {{ s[-2:] }} {{ d['k'] }} {{ d.k }} {{ d.get('k') }} {{ d.get('missing', 'dflt') }} {{ xs.0 }} {{ d.keys() | list }}"
     " {{ d.values() | list }} {{ s[0] }}", {"xs": [1, 2, 3, 4], "s": "héllo", "d": {"k": "v"}}),
    ("tests", "{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ 's' is string }}{{ d is mapping }}{{ xs is iterable }}"
     "{{ xs is sequence }}{{ none is none }}{{ true is boolean }}{{ 4 is even }}{{ 9 is divisibleby 3 }}"
     "{{ 'a' is lower }}{{ 'A' is upper }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ 'a' is in 'abc' }}{{ range is callable }}",
     {"d": {}, "xs": [1]}),
    ("undefined_values", "[{{ missing }}]{{ missing | length }}{% for x in missing %}x{% endfor %}{{ missing is none }}"
     "{{ d.nope is defined }}[{{ d.nope }}]{{ missing ~ 'cat' }}{% if not missing %}falsy{% endif %}", {"d": {}}),
    ("printing_values", "{{ none }} {{ true }} {{ [1, 'a', none, 2.5, {'k': 'v'}] }} {{ {'a': [true]} }} {{ \"it's\" }}"
     " {{ (1, 2) | list }} {{ 'tab\there' }} {{ x }}", {"x": 1.0}),
    ("string_literals", "{{ 'a\\tb' }}|{{ \"q\\\"q\" }}|{{ 'é\\u00e9\\x41' }}|{{ 'adjacent' ' strings' }}|{{ 'back\\\\slash' }}|{{ '\\q' }}", {}),
    ("generation_block", "{% for m in ms %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
     "{% else %}{{ m.content }}{% endif %}{% endfor %}", {"ms": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ("builtin_tools_and_call_arguments",
     "{%- if builtin_tools is defined %}{{- 'Tools: ' + builtin_tools | reject('equalto', 'code_interpreter') | join(', ') + '\\n' }}"
     "{%- endif %}{{- '<|python_tag|>' + call.name + '.call(' }}{%- for arg_name, arg_val in call.arguments | items %}"
     "{{- arg_name + '=\"' + arg_val + '\"' }}{%- if not loop.last %}{{- ', ' }}{%- endif %}{%- endfor %}{{- ')' }}",
     {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"],
      "call": {"name": "brave_search", "arguments": {"query": "weather", "count": "3"}}}),
    ("raise_exception", "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user') }}{% endif %}",
     {"messages": [{"role": "assistant", "content": "a"}]}),
    ("undefined_attribute_error", "{{ missing.attribute }}", {}),
]
