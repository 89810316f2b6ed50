/* match.h - does a route want an event: references and tag globs
 * (SPEC: Matching). The reference grammar itself is reference.h. Pure. */
#ifndef WR_MATCH_H
#define WR_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include "reference.h"

/* Does a route's reference (from a label) match a pushed event's reference? */
bool repo_ref_match(const struct repo_ref *route, const struct repo_ref *event);

/* Tag globs: '*', '?', '[abc]', '[a-z]', '[!x]', and '\' to escape. */
bool tag_glob_valid(const char *glob);
bool tag_glob_match(const char *glob, const char *tag);

#endif
