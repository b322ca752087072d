/* io.h - model files and checkpoints (layout byte by byte in docs/file-format.md).
 *
 * A file is a frame around tagged sections:
 *   "SATM"/"SATC", u32 version, u64 total size, sections (u32 tag, u64 length, payload)...,
 *   u32 CRC32 of every byte before it.
 * The frame (magic, version, size, trailing CRC) is the same in every version, so a reader
 * can tell a damaged file from a newer one. All values are little-endian, fixed width;
 * floats are IEEE-754 binary32 bit patterns.
 *
 * Writing builds the whole image in memory (sat__wbuf), then writes it atomically.
 * Reading checks the frame and the section table (sat__image) before any section is
 * decoded, and decodes a model image (sat__model_image: pointers into the buffer) before
 * anything big is allocated. */
#ifndef SAT_IO_H
#define SAT_IO_H

#include "graph/graph.h"

#define SAT__FORMAT_VERSION 1u
#define SAT__HEADER_SIZE 16u  /* magic, version, total size */
#define SAT__TRAILER_SIZE 4u  /* CRC32 */
#define SAT__SECTION_HEADER 12u
#define SAT__MAX_FILE_SIZE ((uint64_t)4 << 30)
#define SAT__MAX_SPEC_LEN ((uint64_t)1 << 20)
#define SAT__MAX_SECTIONS 64

/* Four ASCII characters, stored in the file in reading order. */
#define SAT__TAG(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SAT__TAG_SPEC SAT__TAG('S', 'P', 'E', 'C')
#define SAT__TAG_OPTS SAT__TAG('O', 'P', 'T', 'S')
#define SAT__TAG_META SAT__TAG('M', 'E', 'T', 'A')
#define SAT__TAG_PARM SAT__TAG('P', 'A', 'R', 'M')
#define SAT__TAG_BNST SAT__TAG('B', 'N', 'S', 'T')
#define SAT__TAG_OPTM SAT__TAG('O', 'P', 'T', 'M')
#define SAT__TAG_TRNR SAT__TAG('T', 'R', 'N', 'R')
#define SAT__TAG_LOOP SAT__TAG('L', 'O', 'O', 'P')
#define SAT__TAG_OCTL SAT__TAG('O', 'C', 'T', 'L')

/* Payload sizes of the fixed-size sections. */
#define SAT__OPTS_SIZE 40u
#define SAT__META_SIZE 28u
#define SAT__LOOP_SIZE 16u

/* What a reader accepts. */
#define SAT__KIND_MODEL 1
#define SAT__KIND_CHECKPOINT 2

/* ---- encode.c: little-endian writer into a growing buffer (plain malloc, so a saved
 * buffer can be handed to the caller and freed with sat_free) ---- */
typedef struct sat__wbuf {
    unsigned char *data;
    size_t len, cap;
    int failed; /* an allocation failed; later writes are ignored */
} sat__wbuf;

void sat__wb_bytes(sat__wbuf *b, const void *p, size_t n);
void sat__wb_u32(sat__wbuf *b, uint32_t v);
void sat__wb_u64(sat__wbuf *b, uint64_t v);
void sat__wb_f32(sat__wbuf *b, float v);
void sat__wb_floats(sat__wbuf *b, const float *x, int64_t n);
/* Starts a section; returns the mark that sat__wb_section_end needs to fill its length. */
size_t sat__wb_section_begin(sat__wbuf *b, uint32_t tag);
void sat__wb_section_end(sat__wbuf *b, size_t mark);
void sat__wb_free(sat__wbuf *b);

uint32_t sat__rd_u32(const unsigned char *p);
uint64_t sat__rd_u64(const unsigned char *p);
float sat__rd_f32(const unsigned char *p);
void sat__rd_floats(float *dst, const unsigned char *src, int64_t n);
/* Index of the first NaN/Inf among n stored floats, or -1. */
int64_t sat__rd_first_nonfinite(const unsigned char *src, int64_t n);

/* ---- container.c: the frame and the section table ---- */
void sat__wb_header(sat__wbuf *b, const char magic[4]);
/* Fills in the total size and appends the CRC32. */
void sat__wb_finish(sat__wbuf *b);

typedef struct sat__section {
    uint32_t tag;
    uint64_t len;
    const unsigned char *data;
    uint64_t offset; /* of the section header in the file, for messages */
} sat__section;

typedef struct sat__image {
    int kind; /* SAT__KIND_* */
    uint32_t version;
    int num_sections;
    sat__section sec[SAT__MAX_SECTIONS];
} sat__image;

/* Checks magic (one of the kinds in `accept`), size, CRC and version, and lists the
 * sections. `what` names the file in messages written into err. */
int32_t sat__image_parse(const void *buf, size_t size, int accept, const char *what,
                         sat__image *img, char *err);
/* The section with this tag, or NULL. */
const sat__section *sat__image_find(const sat__image *img, uint32_t tag);

/* ---- file.c: whole-file I/O ---- */
/* Writes data to a temporary file beside path, syncs it and renames it over path; on
 * failure the temporary is removed and an existing file is untouched. */
int32_t sat__write_file_atomic(const char *path, const void *data, size_t size, char *err);
/* Reads a regular file of at most SAT__MAX_FILE_SIZE bytes into memory from ctx's
 * allocator (*data freed with sat__dealloc). */
int32_t sat__read_file(const sat_context *ctx, const char *path, unsigned char **data,
                       size_t *size, char *err);

/* ---- model_image.c: the sections every file holds ---- */
typedef struct sat__model_image {
    const char *spec; /* not NUL-terminated */
    size_t spec_len;
    sat_model_opts opts;
    sat_model_meta meta;
    int64_t num_params;
    const unsigned char *params;
    int64_t num_state;
    const unsigned char *state;
} sat__model_image;

sat_model_meta sat__meta_defaults(void);
/* Checks a caller's meta (NULL gives the defaults) and copies it into *out. */
int32_t sat__meta_import(const sat_model_meta *meta, sat_model_meta *out, char *err);
/* Appends SPEC, OPTS, META, PARM and BNST. */
void sat__wb_model_sections(sat__wbuf *b, const sat_model *m, const sat_model_meta *meta);
/* Decodes and checks those sections (lengths, limits, values, finite floats). */
int32_t sat__model_image_decode(const sat__image *img, const char *what, sat__model_image *mi,
                                char *err);
/* Builds a model from a decoded image after checking that the spec gives the stored
 * parameter and state counts. */
int32_t sat__model_from_image(sat_context *ctx, const sat__model_image *mi, const char *what,
                              sat_model **out, char *err);
/* Does a checkpoint's model fit this model (same spec text, same counts)? SAT_E_INVALID_ARG
 * if not. */
int32_t sat__model_image_match(const sat__model_image *mi, const sat_model *m, const char *what, char *err);
/* Copies the caller-visible fields of a stored meta into the caller's struct. */
void sat__meta_export(const sat_model_meta *stored, sat_model_meta *meta);

/* ---- optimizer_image.c: the optimizer's sections of a checkpoint (OPTM: state block and
 * step; OCTL: base learning rate, per-parameter scales, freeze mask), shared by trainer
 * checkpoints and model-and-optimizer checkpoints ---- */
struct sat_optimizer;
typedef struct sat__optimizer_image {
    uint32_t kind;
    int64_t step, count;
    const unsigned char *state;
    int has_control; /* OCTL present (files written before it lack it) */
    float lr;
    int64_t num_params;
    const unsigned char *scales, *frozen;
    int scaled, any_frozen; /* some scale is not 1; some parameter is frozen */
} sat__optimizer_image;

void sat__wb_optimizer_sections(sat__wbuf *b, const struct sat_optimizer *opt);
/* Decodes OPTM (required) and OCTL (optional), checking every value. */
int32_t sat__optimizer_image_decode(const sat__image *img, const char *what, sat__optimizer_image *oi,
                                    char *err);
/* Does the stored optimizer fit this handle? SAT_E_INVALID_ARG if not. */
int32_t sat__optimizer_image_match(const sat__optimizer_image *oi, const struct sat_optimizer *opt,
                                   const char *what, char *err);
/* After the match, before anything is applied: allocates the handle's learning-rate scales
 * or freeze mask where the image needs them and the handle has none (all 1 / all 0, so the
 * handle means the same); SAT_E_NOMEM with a message naming `what` into err. */
int32_t sat__optimizer_image_reserve(const sat__optimizer_image *oi, struct sat_optimizer *opt, const char *what,
                                     char *err);
/* Copies a decoded, matched and reserved image into the handle; cannot fail. */
void sat__optimizer_image_apply(const sat__optimizer_image *oi, struct sat_optimizer *opt);
/* A float block section of `fixed` bytes followed by the floats whose count is at fixed - 8. */
int32_t sat__tail_block(const sat__section *s, uint32_t fixed, const char *name, const char *what,
                        int64_t *count, const unsigned char **data, char *err);

#endif
