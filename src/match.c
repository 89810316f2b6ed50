/* match.c - placeholder until implemented. */
