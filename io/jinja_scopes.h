// Where a name is looked up, as jinja2's compiler fixes it (jinja2/idtracking.py 3.1): each frame
// (the template, a loop's body and its else, a set block, a macro, a generation block) binds the
// names it sets. A name set in a frame before the frame reads it, and unknown to the frames
// around it, is that frame's own from the frame's start: unset (Undefined) until the set runs,
// even where the variables passed in have it, and a loop or macro reading it earlier reads
// Undefined. A name read first, or first set inside an if, is looked up outward as it runs.
#pragma once
#include <string>
#include <vector>

#include "io/jinja_syntax.h"

namespace llm::jinja {

// Fills Node::unbound and Node::else_unbound of every frame in `root`; returns the template's own.
std::vector<std::string> bind_frames(Body& root);

}  // namespace llm::jinja
