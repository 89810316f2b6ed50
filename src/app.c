/* app.c - placeholder until implemented. */
