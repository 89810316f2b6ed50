/* docker_events.c - placeholder until implemented. */
