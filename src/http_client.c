/* http_client.c - placeholder until implemented. */
