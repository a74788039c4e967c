/*
 * The Unix SOCK_SEQPACKET transport ihsmd speaks: message boundaries are
 * kept by the kernel, so one send is one frame and a short read is a
 * truncated (hence malformed) frame, never half of the next one.
 */
#include "ihsm_transport.h"
#include "ihsm_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

const char *ihsm_socket_path(const char *explicit_path)
{
    const char *env;

    if (explicit_path != NULL && *explicit_path != '\0')
        return explicit_path;
    env = getenv("IHSM_SOCKET");
    if (env != NULL && *env != '\0')
        return env;
    return IHSM_DEFAULT_SOCKET;
}

int ihsm_transport_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (path == NULL || strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int ihsm_transport_send(int fd, const void *frame, size_t len)
{
    ssize_t n;

    do {
        n = send(fd, frame, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? IHSM_OK : IHSM_ERR_DEVICE_GONE;
}

int ihsm_transport_recv(int fd, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    ssize_t n;
    int r;

    *len = 0;
    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return IHSM_ERR_TIMEOUT;
    if (r < 0)
        return IHSM_ERR_DEVICE_GONE;
    do {
        n = recv(fd, buf, cap, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return IHSM_ERR_DEVICE_GONE;
    if ((size_t)n > cap) /* the peer sent more than a frame may hold */
        return IHSM_ERR_LIMIT_FRAME;
    *len = (size_t)n;
    return IHSM_OK;
}
