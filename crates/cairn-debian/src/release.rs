//! Signed `InRelease` files: OpenPGP verification against a keyring, then the
//! per-file sha256 list that every index is checked against.
