/* forward.c - placeholder until implemented. */
