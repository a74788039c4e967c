/*
 * Transports to the device. Today: a Unix SOCK_SEQPACKET socket to ihsmd,
 * one frame per message. Tomorrow a char device behind the same calls.
 */
#ifndef IHSM_TRANSPORT_H
#define IHSM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define IHSM_DEFAULT_SOCKET "/run/ihsm/ihsmd.sock"

/* Socket path: explicit, else $IHSM_SOCKET, else IHSM_DEFAULT_SOCKET. */
const char *ihsm_socket_path(const char *explicit_path);

/* Connect (blocking, close-on-exec). Returns the fd, or -1 with errno set. */
int ihsm_transport_connect(const char *path);
/* Send one frame as one message. Returns IHSM_OK, IHSM_ERR_DEVICE_GONE. */
int ihsm_transport_send(int fd, const void *frame, size_t len);
/* Receive one frame into buf (cap >= IHSM_MAX_FRAME). timeout_ms < 0 waits
 * forever. Returns IHSM_OK with *len set, IHSM_ERR_TIMEOUT, or
 * IHSM_ERR_DEVICE_GONE (peer closed or error). */
int ihsm_transport_recv(int fd, void *buf, size_t cap, size_t *len, int timeout_ms);
#endif
