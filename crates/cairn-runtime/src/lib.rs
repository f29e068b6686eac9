//! Activation, entrypoint and services.
