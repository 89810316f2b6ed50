/* payload.c - placeholder until implemented. */
