/* payload_distribution.c - placeholder until implemented. */
