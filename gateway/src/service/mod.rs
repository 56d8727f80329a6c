//! The configuration model: virtual services, real servers, local-address pools.
