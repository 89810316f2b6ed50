/* handlers.c - placeholder until implemented. */
