/* make_tiny_idx.c - writes a tiny IDX data set (the MNIST file layout) into a directory for
 * the sat-cli tests: 12x12 images of two easily separated classes, class 0 bright in the top
 * half and class 1 bright in the bottom half, with a little deterministic noise.
 * Usage: make_tiny_idx DIR [TRAIN_COUNT TEST_COUNT] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SIDE 12

static uint32_t state = 12345u;
static unsigned noise(void) {
    state = state * 1664525u + 1013904223u;
    return (state >> 24) % 48u;
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int write_split(const char *dir, const char *prefix, uint32_t n) {
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fi = fopen(ipath, "wb"), *fl = fopen(lpath, "wb");
    if (!fi || !fl) {
        fprintf(stderr, "make_tiny_idx: cannot write %s\n", !fi ? ipath : lpath);
        if (fi) fclose(fi);
        if (fl) fclose(fl);
        return 1;
    }
    unsigned char h[16];
    be32(h, 0x803u);
    be32(h + 4, n);
    be32(h + 8, SIDE);
    be32(h + 12, SIDE);
    fwrite(h, 1, 16, fi);
    be32(h, 0x801u);
    be32(h + 4, n);
    fwrite(h, 1, 8, fl);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char label = (unsigned char)(i % 2u), img[SIDE * SIDE];
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                int bright = (r < SIDE / 2) == (label == 0);
                img[r * SIDE + c] = (unsigned char)(bright ? 200u + noise() : noise());
            }
        fwrite(img, 1, sizeof img, fi);
        fputc(label, fl);
    }
    int bad = ferror(fi) || ferror(fl);
    bad |= fclose(fi) != 0;
    bad |= fclose(fl) != 0;
    if (bad) fprintf(stderr, "make_tiny_idx: write error in %s\n", dir);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: make_tiny_idx DIR [TRAIN_COUNT TEST_COUNT]\n");
        return 2;
    }
    uint32_t ntrain = argc == 4 ? (uint32_t)strtoul(argv[2], NULL, 10) : 400u;
    uint32_t ntest = argc == 4 ? (uint32_t)strtoul(argv[3], NULL, 10) : 100u;
    if (write_split(argv[1], "train", ntrain) || write_split(argv[1], "t10k", ntest)) return 1;
    printf("wrote %u training and %u test images to %s\n", ntrain, ntest, argv[1]);
    return 0;
}
