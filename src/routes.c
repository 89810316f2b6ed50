/* routes.c - placeholder until implemented. */
