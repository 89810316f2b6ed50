/* url.c - placeholder until implemented. */
