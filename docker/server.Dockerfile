# A real server: nginx on port 80 of its container's network namespace (the
# harness gives that namespace a DPDK tap of the fabric, its address and its
# route). /who answers the server's name (SERVER_NAME); / serves /srv/www,
# mounted by the harness (the 100 MB file of the download case). The access
# log shows who connected: the FNAT local address, or the client under NAT.
ARG BASE
FROM ${BASE}
COPY nginx.conf /etc/nginx/nginx.conf
CMD ["/bin/sh", "-c", "printf '%s\\n' \"$SERVER_NAME\" > /etc/nginx/who && exec nginx"]
