// prelude/metal.h: what the Metal dialect puts in front of shaders/*.metal.
#include <metal_stdlib>
using namespace metal;

#define MX_DOUBLE 0   // Metal has no double
