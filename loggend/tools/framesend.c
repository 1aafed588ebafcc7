// framesend.c - the bench's C sender of a pool's own frames (loggend bench builds it with cc).
//
// usage: framesend -f POOLFILE [-p port] [-d secs] [-b frames_per_call]
//
// POOLFILE (native byte order): u32 frames, then per frame u32 count and u32 length, then the
// frames' bytes back to back (count * length each). Every frame goes out on a connected UDP socket
// to 127.0.0.1 with a UDP_SEGMENT control message of its length, so the kernel carries exactly the
// datagrams of a loggend worker's pool, in its order, with no per-message work in user space: what
// this machine delivers of that traffic before any Python runs.
// prints: RESULT sent=<datagrams> secs=<s> pps=<sent/secs> calls=<n> errs=<n> utime=<s> stime=<s>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

typedef struct {
    struct cmsghdr h;
    uint16_t seg;
    uint8_t pad[6];
} gso_cmsg;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec * 1e-6; }

int main(int argc, char **argv) {
    const char *path = NULL;
    int port = 51400, batch = 1, opt;
    double dur = 5.0;
    while ((opt = getopt(argc, argv, "f:p:d:b:")) != -1) {
        switch (opt) {
        case 'f': path = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        default: fprintf(stderr, "usage: %s -f poolfile [-p port] [-d secs] [-b frames_per_call]\n", argv[0]); return 2;
        }
    }
    FILE *f = path ? fopen(path, "rb") : NULL;
    uint32_t nframes = 0;
    if (!f || fread(&nframes, 4, 1, f) != 1 || nframes == 0 || batch < 1) {
        fprintf(stderr, "framesend: cannot read a pool from %s\n", path ? path : "(no -f)");
        return 2;
    }
    uint32_t *count = malloc(4 * (size_t)nframes), *length = malloc(4 * (size_t)nframes);
    size_t total = 0;
    for (uint32_t i = 0; i < nframes; i++) {
        if (fread(&count[i], 4, 1, f) != 1 || fread(&length[i], 4, 1, f) != 1) { fprintf(stderr, "framesend: short header\n"); return 2; }
        total += (size_t)count[i] * length[i];
    }
    char *buf = malloc(total);
    if (!buf || fread(buf, 1, total, f) != total) { fprintf(stderr, "framesend: short pool\n"); return 2; }
    fclose(f);

    // a ring of headers, nframes * batch long, so every window of `batch` starting at a multiple of it is valid
    size_t nmm = (size_t)nframes * batch;
    struct iovec *iov = calloc(nframes, sizeof(*iov));
    gso_cmsg *cm = calloc(nframes, sizeof(*cm));
    struct mmsghdr *mm = calloc(nmm, sizeof(*mm));
    size_t off = 0;
    for (uint32_t i = 0; i < nframes; i++) {
        iov[i].iov_base = buf + off;
        iov[i].iov_len = (size_t)count[i] * length[i];
        off += iov[i].iov_len;
        cm[i].h.cmsg_len = CMSG_LEN(sizeof(uint16_t));
        cm[i].h.cmsg_level = SOL_UDP;
        cm[i].h.cmsg_type = UDP_SEGMENT;
        cm[i].seg = (uint16_t)length[i];
    }
    for (size_t j = 0; j < nmm; j++) {
        size_t k = j % nframes;
        mm[j].msg_hdr.msg_iov = &iov[k];
        mm[j].msg_hdr.msg_iovlen = 1;
        mm[j].msg_hdr.msg_control = &cm[k];
        mm[j].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) { perror("framesend"); return 1; }

    long long sent = 0, calls = 0, errs = 0;
    size_t nb = nmm / batch, bi = 0;
    double t0 = now(), tend = t0 + dur, t;
    do {
        for (int rep = 0; rep < 64; rep++) {
            struct mmsghdr *w = mm + bi * batch;
            int r = sendmmsg(fd, w, batch, 0);
            calls++;
            if (r < 0) errs++;
            else
                for (int i = 0; i < r; i++) sent += count[(bi * batch + i) % nframes];
            if (++bi == nb) bi = 0;
        }
        t = now();
    } while (t < tend);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT sent=%lld secs=%.4f pps=%.0f calls=%lld errs=%lld utime=%.3f stime=%.3f\n", sent, t - t0,
           (t - t0) > 0 ? sent / (t - t0) : 0.0, calls, errs, seconds(ru.ru_utime), seconds(ru.ru_stime));
    return 0;
}
