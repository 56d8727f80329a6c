//! Schedulers: which real server gets a new connection.
