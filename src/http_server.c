/* http_server.c - placeholder until implemented. */
