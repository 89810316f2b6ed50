/* docker_watch.c - placeholder until implemented. */
