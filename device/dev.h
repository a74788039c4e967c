/*
 * ihsmd internals shared by the daemon's files (main.c, dev_*.c): the
 * daemon context, partitions, sessions, the key table, connections, jobs.
 * The crypto core is behind dev_crypto.h only: nothing here touches key
 * bytes, it holds opaque ihsm_key pointers.
 *
 * Lock order (outer first): partitions registry -> partition epoch ->
 * partition auth -> session -> partition key table. The work queue, the
 * buffer pool and the audit log are leaves. No mutex is held while a crypto
 * operation runs; the partition epoch (a read lock) is, around masking and
 * unmasking, so that ZEROIZE can switch the partition id atomically.
 */
#ifndef IHSM_DEV_H
#define IHSM_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dev_crypto.h"
#include "ihsm_codec.h"
#include "ihsm_proto.h"

#define IHSMD_VERSION "0.1.0"
#define IHSMD_FIRMWARE "ihsmd " IHSMD_VERSION " (software HSM)"

#define DEV_MAX_ADMINS 16
#define DEV_MAX_UIDS 256        /* allowed uids per partition */
#define DEV_MAX_NAME 64         /* partition and key names */
#define DEV_PIN_ITERATIONS 10000 /* the PIN is 256 random bits: PBKDF2 only
                                    keeps the verifier from being a plain hash */
#define DEV_LOCKOUT_AFTER 3     /* consecutive wrong PINs before a lockout */
#define DEV_LOCKOUT_MAX 3600000 /* ms: an hour */
#define DEV_MAX_STRIKES 3       /* undecodable frames before a hang-up */
#define DEV_SEND_TIMEOUT_S 5    /* a client that stops reading is dropped */

struct ihsmd;
struct dev_ctx;
struct dev_conn;
struct dev_session;
struct dev_partition;

/* ---------------- dev_log.c ---------------- */
void dev_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dev_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int dev_debug_on(void);
void dev_log_init(void);

/* ---------------- dev_fs.c: names, hex, atomic files ---------------- */
/* [A-Za-z0-9._-], 1..64 chars, no leading dot. */
int dev_name_valid(const uint8_t *p, size_t len);
void dev_hex(char *out, const uint8_t *in, size_t n); /* out: 2n+1 */
int dev_unhex(uint8_t *out, size_t n, const char *in); /* 0 ok: exactly 2n hex */
/* temp file (0600), fsync, rename (or link when exclusive: -EEXIST if the
 * name is taken), fsync of the directory. Returns 0 or -errno. */
int dev_write_atomic(const char *dir, const char *name, const void *data,
                     size_t len, int exclusive);
/* The same; sync 0 skips both fsyncs: still whole-or-old for readers and
 * after a clean stop, but a crash may keep the old file. */
int dev_write_atomic_ex(const char *dir, const char *name, const void *data,
                        size_t len, int exclusive, int sync);
/* Whole file, at most max bytes (-EFBIG past it). Returns 0 or -errno;
 * free *buf with dev_free_file(*buf, *len) (cleansed). */
int dev_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);
void dev_free_file(uint8_t *buf, size_t len);
int dev_fsync_dir(const char *dir);
/* mkdir mode, EEXIST is fine when it is a directory. 0 or -errno. */
int dev_mkdir(const char *path, mode_t mode);
int dev_path(char *out, size_t cap, const char *a, const char *b);

/* ---------------- dev_table.c: handle tables ---------------- */
/* Slots addressed by a u32 handle = generation << 16 | (index + 1): never
 * 0, and a freed slot bumps its generation so a stale handle never names
 * the next object. Freed slots are reused oldest first. Not locked: the
 * owner locks. */
struct dev_table {
    void **obj;
    uint16_t *gen;
    uint32_t cap, max, used;
    uint32_t *freeq; /* ring of free indices */
    uint32_t fq_head, fq_count;
};
int dev_table_init(struct dev_table *t, uint32_t max); /* max <= 65535 */
void dev_table_free(struct dev_table *t);
uint32_t dev_table_add(struct dev_table *t, void *obj); /* 0: full / nomem */
void *dev_table_get(const struct dev_table *t, uint32_t h);
void *dev_table_remove(struct dev_table *t, uint32_t h);
/* i-th slot's object (NULL if free) and its handle, for sweeps. */
void *dev_table_slot(const struct dev_table *t, uint32_t i, uint32_t *h);

/* ---------------- dev_stats.c ---------------- */
struct dev_stats {
    atomic_ullong requests, frames_in, frames_out, largest_batch;
    atomic_ullong sign, derive, aead, random, errors, malformed_frames;
    atomic_llong sessions_open, keys_loaded, connections;
};
void dev_stats_max(atomic_ullong *a, unsigned long long v);
int dev_stats_write(struct ihsmd *d, ihsm_wr *out);

/* ---------------- dev_audit.c: the MAC-chained audit log ---------------- */
/* After dev_state_open has the root secret: derives the audit key, reads
 * the head (audit.head), checks the log's end against it. */
int dev_audit_open(struct ihsmd *d);
void dev_audit_close(struct ihsmd *d);
/* One record: time, sequence number, uid, pid, event, partition, key,
 * outcome, MAC. conn may be NULL (the daemon itself); part and key may be
 * NULL. */
void dev_audit(struct ihsmd *d, const struct dev_conn *conn, const char *event,
               const char *part, const uint8_t *key, size_t key_len,
               const char *outcome);
/* dev_audit_verify.c: AUDIT_VERIFY and AUDIT_READ */
int dev_cmd_audit_verify(struct dev_ctx *c);
int dev_cmd_audit_read(struct dev_ctx *c);
/* What a chain check found (also the state carried between chunks). */
struct dev_audit_check {
    uint64_t next_seq;  /* the sequence number the next record must have */
    uint8_t prev_mac[32];
    uint64_t line;      /* lines read so far */
    uint64_t records;   /* records verified */
    uint32_t result;    /* enum ihsm_audit_result */
    uint64_t bad_seq, bad_line;
    char why[256];
};
/* Check the complete lines in buf[0..len) against the chain. Stops at the
 * first bad record (result != IHSM_AUDIT_OK). */
void dev_audit_check_lines(struct ihsmd *d, struct dev_audit_check *ck,
                           const char *buf, size_t len);
/* The head as it is now: last sequence number, its MAC, the log's size. */
void dev_audit_head(struct ihsmd *d, uint64_t *seq, uint8_t mac[32], uint64_t *size);
/* Compare a checked chain's end with the head (seq, mac): sets ck->result. */
void dev_audit_check_head(struct dev_audit_check *ck, uint64_t seq, const uint8_t mac[32]);

/* ---------------- dev_keys.c: the per-partition key table ---------------- */
struct dev_keyobj {
    ihsm_key *key;
    atomic_int pins;  /* the table's own + one per operation in progress */
    uint32_t holders; /* sessions holding it; under the table lock */
    uint32_t handle;
    uint8_t hash[32]; /* SHA-256 of the masked blob it was loaded from */
};
struct dev_keytab {
    pthread_mutex_t mu;
    struct dev_table t;
};
int dev_keytab_init(struct dev_keytab *kt);
void dev_keytab_destroy(struct ihsmd *d, struct dev_keytab *kt);
/* Pinned object for an operation, or NULL (IHSM_ERR_BAD_HANDLE). */
struct dev_keyobj *dev_keys_get(struct dev_keytab *kt, uint32_t handle);
void dev_keyobj_put(struct ihsmd *d, struct dev_keyobj *o);
/* Make sess hold the key loaded from a blob with this hash. If one is
 * loaded already it is used (and *key, if given, is freed); else *key is
 * inserted (key NULL or *key NULL: IHSM_ERR_NOT_FOUND, nothing loaded).
 * On IHSM_OK *out is pinned: put it when done. On error *key is left to
 * the caller. */
int dev_keys_hold(struct ihsmd *d, struct dev_keytab *kt, struct dev_session *s,
                  const uint8_t hash[32], ihsm_key **key,
                  struct dev_keyobj **out);
/* The session drops its hold; the key is freed when nobody holds it. */
int dev_keys_release(struct ihsmd *d, struct dev_keytab *kt,
                     struct dev_session *s, uint32_t handle);
void dev_keys_unhold(struct ihsmd *d, struct dev_keytab *kt, uint32_t handle);
/* Unload now, whoever holds it. IHSM_ERR_BAD_HANDLE if none. */
int dev_keys_delete(struct ihsmd *d, struct dev_keytab *kt, uint32_t handle);
int dev_keys_delete_hash(struct ihsmd *d, struct dev_keytab *kt,
                         const uint8_t hash[32]);
size_t dev_keys_zeroize(struct ihsmd *d, struct dev_keytab *kt);
void dev_blob_hash(const uint8_t *blob, size_t len, uint8_t hash[32]);

/* ---------------- dev_keystore.c: key files ---------------- */
/* A key file (named keys, import.key): the masked blob plus what KEY_LIST
 * reports without unmasking. Only the blob is authenticated. */
struct dev_keyrec {
    uint32_t type, bits, usage;
    const uint8_t *pub;  size_t pub_len;
    const uint8_t *blob; size_t blob_len;
};
/* Serialise k and its blob into out. */
int dev_keyrec_encode(const ihsm_key *k, const uint8_t *blob, size_t blob_len,
                      ihsm_wr *out);
/* Parse buf (pointers into it). 0 or -1. */
int dev_keyrec_decode(const uint8_t *buf, size_t len, struct dev_keyrec *r);
/* partitions/NAME/keys/LABEL.key */
int dev_keystore_path(const struct dev_partition *p, const uint8_t *name,
                      size_t name_len, char *out, size_t cap);
int dev_keystore_exists(const struct dev_partition *p, const uint8_t *name,
                        size_t len);
/* IHSM_OK, IHSM_ERR_EXISTS or IHSM_ERR_STORAGE */
int dev_keystore_store(const struct dev_partition *p, const uint8_t *name,
                       size_t len, const uint8_t *rec, size_t rec_len);
/* IHSM_OK, IHSM_ERR_NOT_FOUND, IHSM_ERR_STORAGE; free with dev_free_file */
int dev_keystore_load(const struct dev_partition *p, const uint8_t *name,
                      size_t len, uint8_t **buf, size_t *buf_len);
int dev_keystore_remove(const struct dev_partition *p, const uint8_t *name,
                        size_t len);
/* KEY_LIST payload */
int dev_keystore_list(const struct dev_partition *p, ihsm_wr *out);
/* Remove every key file; returns how many. */
size_t dev_keystore_wipe(const struct dev_partition *p);

/* ---------------- dev_partition.c ---------------- */
struct dev_partition {
    struct dev_partition *next;
    char name[DEV_MAX_NAME + 1];
    char dir[4096];
    char keydir[4096];
    uint8_t id[16];
    uint8_t *mask_key; /* 32 bytes in the secure heap */
    uid_t uids[DEV_MAX_UIDS];
    size_t n_uids;
    pthread_mutex_t auth_mu; /* verifier, failure counter, partition.conf */
    uint8_t salt[16];
    uint32_t iterations;
    uint8_t verifier[32];         /* user PIN */
    uint8_t officer_verifier[32]; /* crypto officer PIN */
    int has_officer;              /* 0: made before roles, no officer */
    pthread_rwlock_t epoch_lock;  /* id and mask_key: read to use, write to rotate */
    uint32_t failures;
    int64_t lockout_until; /* unix milliseconds */
    struct dev_keytab keys;
};
struct dev_partitions {
    pthread_mutex_t mu;
    struct dev_partition *head;
    char dir[4096]; /* STATE/partitions */
};
int dev_partitions_init(struct ihsmd *d);
void dev_partitions_destroy(struct ihsmd *d);
/* Loaded (from memory or partition.conf). IHSM_OK, IHSM_ERR_NO_PARTITION,
 * IHSM_ERR_STORAGE. */
int dev_partition_get(struct ihsmd *d, const uint8_t *name, size_t len,
                      struct dev_partition **out);
/* Create; pin and officer_pin receive the new PINs (user, crypto
 * officer). IHSM_OK or IHSM_ERR_EXISTS... */
int dev_partition_create(struct ihsmd *d, const uint8_t *name, size_t len,
                         const uint32_t *uids, size_t n_uids,
                         uint8_t pin[IHSM_PIN_LEN], uint8_t officer_pin[IHSM_PIN_LEN]);
int dev_partition_allows(const struct dev_partition *p, uid_t uid);
/* PIN check with the lockout policy for role (IHSM_ROLE_*): IHSM_OK,
 * IHSM_ERR_AUTH, IHSM_ERR_LOCKED, or IHSM_ERR_PERMISSION when the PIN is
 * right but for the other role. */
int dev_partition_login(struct ihsmd *d, struct dev_partition *p,
                        const struct dev_conn *conn, const uint8_t *pin,
                        size_t pin_len, uint32_t role);
/* Hold the epoch (partition id, masking key) while using them. */
void dev_partition_epoch_hold(struct dev_partition *p);
void dev_partition_epoch_drop(struct dev_partition *p);
/* ZEROIZE: a new partition id and masking key (masked blobs made before
 * no longer unmask), every key file removed, every loaded key unloaded.
 * IHSM_OK, or IHSM_ERR_STORAGE if the new id could not be stored (the
 * keys are destroyed all the same). */
int dev_partition_zeroize(struct ihsmd *d, struct dev_partition *p, size_t *files,
                          size_t *keys);

/* ---------------- dev_session.c ---------------- */
struct dev_session {
    uint32_t id;
    atomic_int refs;
    struct dev_conn *conn; /* identity only: the owner */
    struct dev_partition *part;
    uint32_t role; /* IHSM_ROLE_USER or IHSM_ROLE_OFFICER */
    struct dev_session *conn_next; /* the connection's list, under conn->sess_mu */
    pthread_mutex_t mu;
    int closed;
    uint32_t *handles; /* keys this session holds */
    size_t n_handles, cap_handles;
};
struct dev_sessions {
    pthread_mutex_t mu;
    struct dev_table t;
};
int dev_sessions_init(struct ihsmd *d);
void dev_sessions_destroy(struct ihsmd *d);
/* IHSM_OK (id in *id), IHSM_ERR_LIMIT_SESSIONS, IHSM_ERR_SHUTTING_DOWN */
int dev_session_open(struct ihsmd *d, struct dev_conn *c,
                     struct dev_partition *p, uint32_t role, uint32_t *id);
/* Referenced session if id is open and belongs to c; NULL otherwise. */
struct dev_session *dev_session_get(struct ihsmd *d, struct dev_conn *c,
                                    uint32_t id);
void dev_session_put(struct dev_session *s);
int dev_session_close(struct ihsmd *d, struct dev_conn *c, uint32_t id);
void dev_session_close_all(struct ihsmd *d, struct dev_conn *c);
/* The held-handle set, under s->mu. reserve: room for one more (0/-1);
 * add: 1 added, 0 already held, -1 nomem. */
int dev_session_reserve(struct dev_session *s);
int dev_session_add_handle(struct dev_session *s, uint32_t h);
int dev_session_drop_handle(struct dev_session *s, uint32_t h);

/* ---------------- dev_conn.c: connections and frame buffers ---------------- */
enum dev_op_type { DEV_OP_ACCEPT = 1, DEV_OP_SIGNAL, DEV_OP_RECV, DEV_OP_TIMEOUT };
struct dev_op {
    enum dev_op_type type;
};
struct dev_conn {
    struct dev_op op; /* first: the recv's user_data */
    uint64_t serial;
    int fd;
    uid_t uid;
    pid_t pid;
    atomic_int refs;  /* the loop's + one per job in flight */
    atomic_int dead;  /* a send failed or the peer left: stop talking */
    atomic_uint inflight; /* requests in flight */
    pthread_mutex_t send_mu;
    pthread_mutex_t sess_mu;
    struct dev_session *sessions;
    int closing; /* under sess_mu: no new sessions */
    uint8_t *rbuf; /* IHSM_MAX_FRAME, from the pool */
    size_t rbuf_used; /* high-water mark of what recv wrote: to cleanse */
    int strikes;
    int recv_armed;
    int draining;     /* loop only: hung up on, frames are ignored */
    atomic_int jobs;  /* jobs in flight */
    atomic_int hangup; /* close once the last job has answered */
    struct dev_conn *prev, *next; /* the loop's list */
};
struct dev_conn *dev_conn_new(struct ihsmd *d, int fd);
void dev_conn_get(struct dev_conn *c);
void dev_conn_put(struct ihsmd *d, struct dev_conn *c);
/* Mark dead and shut the socket so a pending recv returns. */
void dev_conn_kill(struct dev_conn *c);
/* Kill once the jobs in flight have answered (now if there are none). */
void dev_conn_hangup(struct dev_conn *c);
/* Send one whole frame (blocking, SO_SNDTIMEO); marks the connection dead
 * on failure. */
int dev_conn_send(struct ihsmd *d, struct dev_conn *c, const uint8_t *p, size_t len);

struct dev_pool {
    pthread_mutex_t mu;
    uint8_t **free;
    size_t n, cap;
};
int dev_pool_init(struct dev_pool *p, size_t keep);
void dev_pool_destroy(struct dev_pool *p);
uint8_t *dev_pool_get(struct dev_pool *p);
/* used: bytes that may hold secrets (PINs, plaintext): cleansed. */
void dev_pool_put(struct dev_pool *p, uint8_t *buf, size_t used);

/* ---------------- dev_worker.c: jobs and workers ---------------- */
struct dev_result {
    uint16_t status;
    uint8_t preset; /* answered without running (decode error, limits) */
    ihsm_wr out;
};
struct dev_job {
    struct dev_job *next;
    struct dev_conn *conn;
    uint8_t *buf; /* the request frame; entries point into it */
    size_t buf_len;
    uint32_t count, claimed, chunk;
    uint32_t inflight; /* counted in conn->inflight */
    atomic_uint done;
    ihsm_entry *ent;
    struct dev_result *res;
};
struct dev_workers {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived / stop */
    pthread_cond_t idle_cv; /* a job finished */
    struct dev_job *head, *tail;
    unsigned long active; /* jobs submitted and not finished */
    int stop;
    unsigned n;
    pthread_t *th;
};
struct dev_job *dev_job_new(struct dev_conn *c, uint32_t count);
void dev_job_submit(struct ihsmd *d, struct dev_job *j);
int dev_workers_start(struct ihsmd *d);
void dev_workers_drain(struct ihsmd *d); /* until no job is in flight */
void dev_workers_stop(struct ihsmd *d);

/* ---------------- dev_cmd.c: command dispatch ---------------- */
struct dev_ctx {
    struct ihsmd *d;
    struct dev_conn *conn;
    struct dev_session *sess; /* held, when the command needs one */
    const ihsm_entry *e;
    ihsm_rd *rd;
    ihsm_wr *out;
};
typedef int (*dev_cmd_fn)(struct dev_ctx *c);
/* Runs one request; the completion payload goes to out (emptied on error). */
int dev_cmd_execute(struct ihsmd *d, struct dev_conn *conn, const ihsm_entry *e,
                    ihsm_wr *out);
/* The handlers, one file per group */
int dev_cmd_info(struct dev_ctx *c);
int dev_cmd_open_session(struct dev_ctx *c);
int dev_cmd_close_session(struct dev_ctx *c);
int dev_cmd_init_partition(struct dev_ctx *c);
int dev_cmd_self_test(struct dev_ctx *c);
int dev_cmd_stats(struct dev_ctx *c);
int dev_cmd_key_generate(struct dev_ctx *c);
int dev_cmd_key_import(struct dev_ctx *c);
int dev_cmd_get_import_key(struct dev_ctx *c);
int dev_cmd_key_unmask(struct dev_ctx *c);
int dev_cmd_key_mask(struct dev_ctx *c);
int dev_cmd_key_delete(struct dev_ctx *c);
int dev_cmd_key_public(struct dev_ctx *c);
int dev_cmd_key_find(struct dev_ctx *c);
int dev_cmd_key_list(struct dev_ctx *c);
int dev_cmd_key_release(struct dev_ctx *c);
int dev_cmd_key_load_session(struct dev_ctx *c); /* dev_cmd_session_key.c */
int dev_cmd_zeroize(struct dev_ctx *c);
int dev_cmd_sign(struct dev_ctx *c);
int dev_cmd_derive(struct dev_ctx *c);
int dev_cmd_aead_seal(struct dev_ctx *c);
int dev_cmd_aead_open(struct dev_ctx *c);
int dev_cmd_random(struct dev_ctx *c);

/* ---------------- dev_state.c: root secret, serial, import key ---------------- */
int dev_state_open(struct ihsmd *d);   /* lock, root.key, serial, dirs */
void dev_state_close(struct ihsmd *d);
/* Loads or (first start, in the background) generates import.key. */
int dev_import_start(struct ihsmd *d);
/* Waits for the import key; NULL when it could not be made. */
const ihsm_key *dev_import_key(struct ihsmd *d);
void dev_import_stop(struct ihsmd *d);

/* ---------------- dev_loop.c: the io_uring event loop ---------------- */
int dev_listen(struct ihsmd *d); /* socket checks, bind, listen */
int dev_loop_run(struct ihsmd *d);

/* ---------------- the daemon ---------------- */
struct ihsmd_config {
    const char *state_dir;
    const char *socket_path;
    unsigned workers;
    uid_t admin_uids[DEV_MAX_ADMINS];
    size_t n_admins;
    unsigned max_sessions;
    unsigned max_keys;
    unsigned max_inflight;
    size_t secure_heap;
};

struct ihsmd {
    struct ihsmd_config cfg;
    uid_t own_uid;
    int failed; /* self-tests failed at start */
    int64_t started; /* monotonic seconds */
    int lock_fd;
    int listen_fd;
    uint8_t *root; /* 32 bytes, secure heap */
    uint8_t serial[16];
    atomic_int stopping;

    pthread_mutex_t import_mu;
    pthread_cond_t import_cv;
    ihsm_key *import_key;
    int import_state; /* 0 being made, 1 ready, -1 unavailable */
    int import_thread;
    pthread_t import_tid;

    int audit_fd;
    pthread_mutex_t audit_mu;  /* the log's end: seq, mac, size */
    uint8_t *audit_key;        /* 32 bytes, secure heap; NULL: records unMACed */
    uint64_t audit_seq;        /* last record written */
    uint8_t audit_mac[32];     /* its MAC */
    uint64_t audit_size;       /* bytes in audit.log */
    pthread_mutex_t audit_head_mu; /* one writer of audit.head at a time */
    atomic_int audit_dirty;    /* records not yet in audit.head */
    atomic_int audit_sync;     /* the next head write is synced (clean stop) */

    struct dev_stats stats;
    struct dev_partitions parts;
    struct dev_sessions sessions;
    struct dev_workers workers;
    struct dev_pool pool;
    atomic_ullong conn_serial;
};

/* The device refuses crypto: failed at start or a later health test. */
int dev_failed(const struct ihsmd *d);
/* root, ihsmd's own uid, or an --admin-uid (INIT_PARTITION, audit). */
int dev_may_admin(const struct ihsmd *d, uid_t uid);
int64_t dev_now_mono(void);

#endif
