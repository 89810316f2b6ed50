/* event.h - a push event: "this image was pushed", whoever saw it.
 *
 * The one type the data flow carries: payload parsers produce it from a
 * webhook body and the registry watcher from a poll; routes_match looks it
 * up, forward_submit delivers it and the engine updater installs it.
 * Nothing here depends on where it came from. */
#ifndef WR_EVENT_H
#define WR_EVENT_H

/* The strings are borrowed: valid while their producer keeps them (for a
 * webhook, until payload_free). Consumers copy what they keep. */
struct push_event {
    const char *format;   /* static string: "distribution", ... */
    const char *id;       /* the source's event id; NULL when it has none */
    const char *registry; /* "host[:port]" as the registry named itself; NULL if unknown */
    const char *repository;
    const char *tag;
    const char *digest;
    const char *ignored;  /* NULL: a push to route. Else why it is ignored. */
};

#endif
