/* handlers.h - the routing layer: which path does what.
 *   POST /webhook, /webhook/<token>  payload -> routes -> forward queue
 *   GET  /health, /ready, /routes */
#ifndef WR_HANDLERS_H
#define WR_HANDLERS_H

#include "http_server.h"

struct app;

/* An http_handler_fn; ud is the struct app. */
void handlers_dispatch(void *ud, const struct http_request *req, struct http_response *res);
/* An http_head_fn: with WEBHOOK_TOKEN, a webhook POST without the right
 * token is answered 401 from its head, its body never read. */
void handlers_head(void *ud, const struct http_request *req, struct http_response *res);

#endif
