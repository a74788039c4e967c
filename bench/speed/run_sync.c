/* sync mode: each worker thread runs one operation after the other; on the
 * ihsm side the call blocks in the offload queue (which drives the ring
 * itself or follows whoever does). */
#include "speed.h"

static int sync_prepare(struct sp_worker *w)
{
    return 1;
}

static void sync_run(struct sp_worker *w)
{
    const struct sp_op_ops *ops = w->run->side->ops;
    struct sp_slot *sl = w->slots[0];

    while (!sp_should_stop(w)) {
        uint64_t t0 = sp_now_ns();

        if (!ops->op(sl)) {
            sp_ossl_err("%s: a %s operation failed", w->run->side->row->name,
                        w->run->side->label);
            w->failed = 1;
            break;
        }
        sp_worker_record(w, t0, sp_now_ns());
    }
}

static void sync_finish(struct sp_worker *w)
{
}

const struct sp_loop sp_loop_sync = { sync_prepare, sync_run, sync_finish };
