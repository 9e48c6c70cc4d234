/* The C ABI's declarations live in include/chorus.h; this target exists so Swift can import them.
 * Nothing is defined here: every chorus_* function is implemented in Swift (Sources/Chorus). */
#include "chorus.h"
