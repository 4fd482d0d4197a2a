"""User-engagement analytics: metrics from pseudonymised play events, k-anonymous."""
