/* handlers.h - the routing layer: which path does what.
 *   POST /webhook, /webhook/<token>  payload -> routes -> forward queue
 *   GET  /health, /ready, /routes */
#ifndef WR_HANDLERS_H
#define WR_HANDLERS_H

#include "http_server.h"

struct app;

/* An http_handler_fn; ud is the struct app. */
void handlers_dispatch(void *ud, const struct http_request *req, struct http_response *res);

#endif
