//! OCI images built from Debian packages.
