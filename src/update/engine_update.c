/* engine_update.c - the I/O half of engine updates (see engine_update.h).
 *
 * One object (engine, id) has at most one job; a push during a job becomes
 * its one follow-up (a later push replaces the follow-up's event). A job is
 * a chain of engine API calls, each callback starting the next; nothing
 * waits on the loop. Here: the calls, the jobs, what a push installs, Swarm
 * services, the start-up search for unfinished recreates, drain and close.
 * A container's recreate is engine_container.c (engine_job.h is what both
 * share). */
#include "engine_job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "reference.h"
#include "url.h"

#define HEAD_TIMEOUT_MS 30000
#define DEFAULT_HEALTH_MS 60000
#define DEFAULT_SERVICE_MS (10 * 60000)
#define DEFAULT_EXIT_CHECK_MS 2000
#define CONFLICT_RETRIES 5              /* service version conflicts re-read and retried */
#define MAX_BODY (16 * 1024 * 1024)
#define DRAIN_TICK_MS 100
#define DRAIN_SLACK_MS 30000            /* API calls of a recreate and its rollback, at shutdown */

static void job_start(struct engine_updater *u, struct object *o);
static void recover_scan(struct job *j);
static void service_begin(struct job *j);

/* ---- small helpers ------------------------------------------------------ */

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}




static void count(struct engine_updater *u, const char *kind, const char *outcome)
{
    for (struct counter *c = u->counters; c; c = c->next)
        if (!strcmp(c->kind, kind) && !strcmp(c->outcome, outcome)) {
            c->n++;
            return;
        }
    struct counter *c = xcalloc(1, sizeof *c);
    *c = (struct counter){kind, outcome, 1, u->counters};
    u->counters = c;
}

/* The engine's own words for a failed call: its {"message"} when it sent
 * one, else the client's cause or the status. */
void eu_describe(const struct job *j, int err, int status, const char *body, size_t len, char *out, size_t n)
{
    if (err) {
        snprintf(out, n, "%s", j->cause[0] ? j->cause : http_client_strerror(err));
        return;
    }
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *msg = str(doc, "message");
    if (msg) snprintf(out, n, "HTTP %d: %s", status, msg);
    else snprintf(out, n, "HTTP %d", status);
    json_decref(doc);
}

/* ---- engine calls --------------------------------------------------------- */

static void on_call_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct job *j = ud;
    j->call = NULL;
    j->next(j, err, status, body, len);
}

static void on_pull_body(void *ud, const char *data, size_t len);

/* path is relative to the API version (docker_engine_call adds it); body
 * (may be NULL) is sent as JSON. A POST without a body still says
 * Content-Length: 0. */
void eu_call(struct job *j, const char *method, const char *path, json_t *body, uint64_t timeout_ms, step_fn next)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    j->cause[0] = '\0';
    j->next = next;
    struct buf h;
    buf_init(&h);
    if (text) buf_puts(&h, "Content-Type: application/json\r\n");
    /* Credentials for the registry, so the engine (and a Swarm's nodes) can
     * pull a private image; only on the calls that pull. */
    if (j->with_auth && j->auth_header) buf_printf(&h, "X-Registry-Auth: %s\r\n", j->auth_header);
    struct http_client_opts o = {
        .headers = buf_cstr(&h),
        .body = text ? text : (strcmp(method, "GET") && strcmp(method, "DELETE") ? "" : NULL),
        .body_len = text ? strlen(text) : 0,
        .connect_timeout_ms = CALL_TIMEOUT_MS,
        /* A stop answers only once the container stopped; a pull's head
         * comes at once and its body takes long. */
        .head_timeout_ms = j->streaming ? HEAD_TIMEOUT_MS : timeout_ms,
        .total_timeout_ms = timeout_ms,
        .errbuf = j->cause,
        .errbuf_len = sizeof j->cause,
        .on_body = j->streaming ? on_pull_body : NULL,
        .max_body = MAX_BODY,
        .on_done = on_call_done,
        .ud = j,
    };
    j->call = docker_engine_call(j->eng->de, method, path, &o);
    free(text);
    buf_free(&h);
}

/* eu_call() with the path formatted: "/containers/%s/start", id. */
void eu_call_at(struct job *j, const char *method, json_t *body, uint64_t timeout_ms, step_fn next,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void eu_call_at(struct job *j, const char *method, json_t *body, uint64_t timeout_ms, step_fn next,
                    const char *fmt, ...)
{
    struct buf p;
    buf_init(&p);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&p, fmt, ap);
    va_end(ap);
    eu_call(j, method, buf_cstr(&p), body, timeout_ms, next);
    buf_free(&p);
}

static void on_job_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    j->on_timer(j);
}

void eu_after(struct job *j, uint64_t ms, void (*fn)(struct job *j))
{
    j->on_timer = fn;
    uv_timer_start(&j->timer, on_job_timer, ms, 0);
}

/* ---- the end of a job ------------------------------------------------------- */

static void handle_closed(struct engine_updater *u)
{
    if (--u->open_handles == 0 && u->closing) {
        if (u->closed_cb) u->closed_cb(u->closed_ud);
        free(u);
    }
}

static void on_job_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct engine_updater *u = j->u;
    free_n(6, j->registry, j->repository, j->tag, j->digest, j->ref, j->auth_header);
    json_decref(j->inspect);
    free_n(5, j->old_id, j->new_id, j->name, j->aside, j->new_image_id);
    json_decref(j->old_image_config);
    json_decref(j->new_image_health);
    json_decref(j->restart_policy);
    buf_free(&j->rb_notes);
    engine_create_plan_free(&j->plan);
    free(j->why);
    buf_free(&j->pull_lines);
    free(j->pull_error);
    json_decref(j->service);
    free(j->prior_update);
    free(j);
    handle_closed(u);
}

/* The job is over: its outcome recorded and counted, the follow-up (if
 * any) started. */
void eu_finish(struct job *j, const char *outcome)
{
    struct engine_updater *u = j->u;
    struct object *o = j->obj;
    j->done = true;
    if (!o) {
        /* The start-up scan of an engine (recover_scan). */
        j->eng->scan = NULL;
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, on_job_closed);
        return;
    }
    if (outcome) {
        o->outcome = outcome;
        o->finished_ms = wall_ms();
        set_str(&o->digest, j->digest);
        count(u, o->kind, outcome);
    }
    /* The object follows its container: the follow-up updates the new one. */
    if (outcome && !strcmp(outcome, "completed") && j->new_id) set_str(&o->id, j->new_id);
    if (outcome && u->on_outcome) {
        bool bad = strcmp(outcome, "completed") != 0 && strcmp(outcome, "unchanged") != 0;
        struct update_outcome uo = {
            .engine = o->engine, .kind = o->kind, .id = o->id, .name = o->name, .outcome = outcome,
            .registry = j->registry, .repository = j->repository, .tag = j->tag, .digest = j->digest,
            .error = !bad ? NULL : j->why ? j->why : j->cause[0] ? j->cause : outcome,
        };
        u->on_outcome(u->on_outcome_ud, &uo);
    }
    o->job = NULL;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
    if (o->has_next && !u->closing && !u->draining) job_start(u, o);
}

/* ---- API version ------------------------------------------------------------ */

static void begin_kind(struct job *j)
{
    if (!j->obj) recover_scan(j);
    else if (j->recovering) engine_container_recover(j);
    else if (!strcmp(j->obj->kind, "service")) service_begin(j);
    else engine_container_begin(j);
}

static void on_version(struct job *j, int err, int status, const char *body, size_t len)
{
    json_t *v = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    /* One rule for the version with the watcher (docker_api_pick): an engine
     * older than DOCKER_MIN_API is refused here too. */
    if (!v || docker_engine_take_version(j->eng->de, str(v, "ApiVersion")) < 0) {
        char why[CAUSE_LEN];
        if (v) snprintf(why, sizeof why, "no usable ApiVersion (need " DOCKER_MIN_API " or newer)");
        else eu_describe(j, err, status, body, len, why, sizeof why);
        struct object *o = j->obj;
        LOG(j->u->log, LOG_ERROR, o ? "update failed" : "engine not checked for unfinished updates",
            F_STR(o ? o->kind : "engine", o ? o->name : docker_engine_name(j->eng->de)), F_STR("id", o ? o->id : NULL),
            F_STR("error", "GET /version"), F_STR("cause", why));
        json_decref(v);
        eu_finish(j, o && !j->recovering ? "failed" : NULL);
        return;
    }
    json_decref(v);
    begin_kind(j);
}

static void version_then_begin(struct job *j)
{
    if (!docker_engine_api(j->eng->de)[0]) {
        /* The API version is asked for once per engine, unversioned. */
        eu_call(j, "GET", "/version", NULL, CALL_TIMEOUT_MS, on_version);
        return;
    }
    begin_kind(j);
}

/* A job on engine e, its timer open (closed by eu_finish). */
static struct job *job_new(struct engine_updater *u, struct engine *e)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->u = u;
    j->eng = e;
    buf_init(&j->pull_lines);
    buf_init(&j->rb_notes);
    uv_timer_init(u->loop, &j->timer);
    j->timer.data = j;
    u->open_handles++;
    return j;
}

static void job_start(struct engine_updater *u, struct object *o)
{
    struct engine *e = NULL;
    for (size_t i = 0; i < u->nengines; i++)
        if (!strcmp(docker_engine_name(u->engines[i].de), o->engine)) e = &u->engines[i];
    struct job *j = job_new(u, e);
    j->obj = o;
    j->registry = o->next_registry;
    j->repository = o->next_repository;
    j->tag = o->next_tag;
    j->digest = o->next_digest;
    o->next_registry = o->next_repository = o->next_tag = o->next_digest = NULL;
    o->has_next = false;
    o->job = j;
    j->started = j->phase_started = uv_now(u->loop);
    if (o->recover) {
        /* Not a push: an unfinished recreate found at start-up. */
        o->recover = false;
        j->recovering = true;
        version_then_begin(j);
        return;
    }
    /* The engine's reference: Docker Hub's repositories without a host. */
    struct buf r;
    buf_init(&r);
    bool hub = !j->registry || !*j->registry || registry_host_is_docker_hub(j->registry);
    if (!hub) buf_printf(&r, "%s/", j->registry);
    buf_printf(&r, "%s:%s", j->repository, j->tag);
    j->ref = buf_steal(&r);
    LOG(u->log, LOG_INFO, "update started", F_STR(o->kind, o->name), F_STR("id", o->id),
        F_STR("engine", o->engine), F_STR("image", j->ref), F_STR("digest", j->digest));
    version_then_begin(j);
}

/* The router's own container id, so that it never recreates itself:
 * /proc/self/mountinfo names the engine's containers/<id>/ directory (its
 * hostname and resolv.conf mounts), cgroup v1 names it in
 * /proc/self/cgroup; failing both, Docker's default hostname is the short
 * id. Empty outside a container. */
void engine_update_self_id(char out[65])
{
    static const char *const files[] = {"/proc/self/mountinfo", "/proc/self/cgroup"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        struct buf b;
        buf_init(&b);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 4 * 1024 * 1024) buf_append(&b, chunk, n);
        fclose(f);
        bool found = b.len && engine_update_find_container_id(buf_cstr(&b), out);
        buf_free(&b);
        if (found) return;
    }
    const char *h = getenv("HOSTNAME");
    if (h && strlen(h) == 12 && strspn(h, "0123456789abcdef") == 12) snprintf(out, 65, "%s", h);
}

/* ---- what is installed ------------------------------------------------------------- */

/* Decides from the object's own image reference and tag label what this
 * push installs (engine_update_pick). Returns 0 to go on; otherwise the job
 * is finished: 1 the push does not apply to it (logged at info, outcome
 * unchanged), -EINVAL its reference cannot be pulled (an error). */
int eu_pick_own(struct job *j, const char *own_image, json_t *labels)
{
    struct object *o = j->obj;
    char why[CAUSE_LEN];
    int rc = engine_update_pick(own_image, str(labels, j->u->tag_label), j->registry, j->repository, j->tag, j->digest,
                                &j->pick, why, sizeof why);
    if (rc == 1) {
        LOG(j->u->log, LOG_INFO, "update skipped", F_STR(o->kind, o->name), F_STR("id", o->id),
            F_STR("engine", o->engine), F_STR("image", own_image), F_STR("pushed", j->ref), F_STR("reason", why));
        eu_finish(j, "unchanged");
        return 1;
    }
    if (rc < 0) {
        LOG(j->u->log, LOG_ERROR, "update failed", F_STR(o->kind, o->name), F_STR("id", o->id),
            F_STR("engine", o->engine), F_STR("error", "not updated"), F_STR("cause", why));
        eu_finish(j, "failed");
        return rc;
    }
    /* <repo>:<tag>@<digest>, as a Swarm pins it: the engine resolves it by
     * the digest alone, and the container's Config.Image keeps the tag that
     * the next push is compared with. No local tag is moved. */
    struct buf r;
    buf_init(&r);
    buf_printf(&r, "%s:%s", j->pick.repo, j->pick.tag);
    if (j->pick.digest[0]) buf_printf(&r, "@%s", j->pick.digest);
    free(j->ref);
    j->ref = buf_steal(&r);
    /* The credentials of the registry pulled from: the object's own. */
    free(j->auth_header);
    j->auth_header = j->u->auth ? registry_auth_header(j->u->auth, j->pick.host) : NULL;
    return 0;
}

/* ---- pull ---- */

/* The pull's progress stream: one JSON object per line; an "error" key is
 * a failure even though the status was 200. */
void eu_scan_pull_line(struct job *j, const char *line, size_t len)
{
    if (j->pull_error || !memchr(line, '{', len)) return;
    json_t *doc = json_loadb(line, len, 0, NULL);
    /* A failed pull answers an error status with the engine's own words
     * in {"message"} ("no basic auth credentials"), streamed like the
     * progress: the cause, rather than "HTTP 500". */
    const char *e = str(doc, "error");
    if (!e) e = str(doc, "message");
    if (e) j->pull_error = xstrdup(e);
    json_decref(doc);
}

static void on_pull_body(void *ud, const char *data, size_t len)
{
    struct job *j = ud;
    buf_append(&j->pull_lines, data, len);
    char *nl;
    while ((nl = memchr(j->pull_lines.data, '\n', j->pull_lines.len))) {
        size_t n = (size_t)(nl - j->pull_lines.data);
        eu_scan_pull_line(j, j->pull_lines.data, n);
        buf_consume(&j->pull_lines, n + 1);
    }
    if (j->pull_lines.len > 1024 * 1024) buf_reset(&j->pull_lines);   /* no line is that long */
}

/* ---- service ----------------------------------------------------------------------- */

static void s_fail(struct job *j, const char *what, const char *cause, const char *outcome)
{
    struct object *o = j->obj;
    LOG(j->u->log, LOG_ERROR, !strcmp(outcome, "rolled_back") ? "service update rolled back" : "service update failed",
        F_STR("service", o->name), F_STR("id", o->id), F_STR("engine", o->engine), F_STR("image", j->ref),
        F_STR("digest", j->digest), F_STR("error", what), F_STR("cause", cause),
        F_INT("duration_ms", since(j, j->started)));
    eu_finish(j, outcome);
}

static void s_fail_call(struct job *j, const char *what, int err, int status, const char *body, size_t len)
{
    char why[CAUSE_LEN];
    eu_describe(j, err, status, body, len, why, sizeof why);
    s_fail(j, what, why, "failed");
}

static void s_poll(struct job *j);

/* The newest task of the service that reports an error (Version.Index
 * grows with every change of a task). */
static const char *newest_task_error(json_t *tasks)
{
    const char *best = NULL;
    json_int_t best_index = -1;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) {
        const char *e = str(json_object_get(t, "Status"), "Err");
        json_int_t index = json_integer_value(json_object_get(json_object_get(t, "Version"), "Index"));
        if (e && *e && index > best_index) {
            best = e;
            best_index = index;
        }
    }
    return best;
}

static void s_tasks(struct job *j, int err, int status, const char *body, size_t len)
{
    json_t *tasks = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    struct object *o = j->obj;
    LOG(j->u->log, LOG_ERROR, !strcmp(j->s_outcome, "rolled_back") ? "service update rolled back" : "service update failed",
        F_STR("service", o->name), F_STR("id", o->id), F_STR("engine", o->engine), F_STR("image", j->ref),
        F_STR("digest", j->digest), F_STR("error", j->s_what), F_STR("cause", j->why),
        F_STR("task_error", newest_task_error(tasks)), F_INT("duration_ms", since(j, j->started)));
    json_decref(tasks);
    eu_finish(j, j->s_outcome);
}

static void s_polled(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        /* One failed read is not the update's outcome: ask again. */
        char why[CAUSE_LEN];
        eu_describe(j, err, status, body, len, why, sizeof why);
        LOG(j->u->log, LOG_DEBUG, "service read failed", F_STR("service", j->obj->name), F_STR("error", why));
    } else {
        json_t *doc = json_loadb(body, len, 0, NULL);
        json_t *us = json_object_get(doc, "UpdateStatus");
        const char *state = str(us, "State");
        const char *startedat = str(us, "StartedAt");
        bool ours = state && (!j->prior_update || !startedat || strcmp(startedat, j->prior_update) != 0);
        if (ours && !strcmp(state, "completed")) {
            LOG(j->u->log, LOG_INFO, "service updated", F_STR("service", j->obj->name), F_STR("id", j->obj->id),
                F_STR("engine", j->obj->engine), F_STR("image", j->ref), F_STR("digest", j->digest),
                F_INT("duration_ms", since(j, j->started)));
            json_decref(doc);
            eu_finish(j, "completed");
            return;
        }
        if (ours && (!strcmp(state, "rollback_completed") || !strcmp(state, "paused") ||
                     !strcmp(state, "rollback_paused"))) {
            /* "rollback completed" says nothing of why: the failed task's
             * own error is read next (s_tasks). */
            snprintf(j->s_what, sizeof j->s_what, "UpdateStatus %s", state);
            set_str(&j->why, str(us, "Message"));
            j->s_outcome = !strcmp(state, "rollback_completed") ? "rolled_back" : "failed";
            json_decref(doc);
            struct buf p;
            buf_init(&p);
            buf_puts(&p, "/tasks?filters=");
            json_t *f = json_pack("{s:[s]}", "service", j->obj->id);
            char *ft = json_dumps(f, JSON_COMPACT);
            url_encode(&p, ft);
            free(ft);
            json_decref(f);
            eu_call(j, "GET", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, s_tasks);
            buf_free(&p);
            return;
        }
        json_decref(doc);
    }
    if (uv_now(j->u->loop) >= j->deadline) {
        s_fail(j, "following the update", "no outcome within the time allowed", "failed");
        return;
    }
    eu_after(j, POLL_MS, s_poll);
}

static void s_poll(struct job *j)
{
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, s_polled, "/services/%s", j->obj->id);
}

static void s_read(struct job *j);

static void s_updated(struct job *j, int err, int status, const char *body, size_t len)
{
    if (!err && status != 200 && body && strstr(body, "out of sequence") && j->conflicts < CONFLICT_RETRIES) {
        /* The spec changed since we read it: read it again. */
        j->conflicts++;
        LOG(j->u->log, LOG_DEBUG, "service version conflict, retrying", F_STR("service", j->obj->name),
            F_INT("attempt", j->conflicts));
        s_read(j);
        return;
    }
    if (err || status != 200) {
        s_fail_call(j, "POST /services/<id>/update", err, status, body, len);
        return;
    }
    j->deadline = uv_now(j->u->loop) + j->u->service_ms;
    eu_after(j, POLL_MS, s_poll);
}

static void s_got(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        s_fail_call(j, "GET /services/<id>", err, status, body, len);
        return;
    }
    json_decref(j->service);
    j->service = json_loadb(body, len, 0, NULL);
    json_t *spec = json_object_get(j->service, "Spec");
    json_t *tt = json_object_get(spec, "TaskTemplate");
    json_t *cs = json_object_get(tt, "ContainerSpec");
    json_t *index = json_object_get(json_object_get(j->service, "Version"), "Index");
    if (!json_is_object(cs) || !json_is_integer(index)) {
        s_fail(j, "GET /services/<id>", "no Spec.TaskTemplate.ContainerSpec or Version.Index", "failed");
        return;
    }
    const char *name = str(spec, "Name");
    if (name) set_str(&j->obj->name, name);
    set_str(&j->prior_update, str(json_object_get(j->service, "UpdateStatus"), "StartedAt"));
    const char *cur = str(cs, "Image");
    if (eu_pick_own(j, cur, json_object_get(spec, "Labels")) != 0) return;
    /* Pinned to j->ref, <own repo>:<tag>@<digest>: the tag for people, the
     * digest for what the nodes run. */
    struct buf img;
    buf_init(&img);
    buf_puts(&img, j->ref);
    if (j->pick.digest[0] && cur && !strcmp(cur, buf_cstr(&img))) {
        LOG(j->u->log, LOG_INFO, "service already runs the pushed image", F_STR("service", j->obj->name),
            F_STR("id", j->obj->id), F_STR("image", buf_cstr(&img)));
        buf_free(&img);
        eu_finish(j, "unchanged");
        return;
    }
    json_object_set_new(cs, "Image", json_string(buf_cstr(&img)));
    buf_free(&img);
    if (!j->pick.digest[0]) {
        /* No digest to pin: the tasks are replaced anyway and pull the tag. */
        json_int_t f = json_integer_value(json_object_get(tt, "ForceUpdate"));
        json_object_set_new(tt, "ForceUpdate", json_integer(f + 1));
    }
    struct buf p;
    buf_init(&p);
    buf_printf(&p, "/services/%s/update?version=%lld", j->obj->id, (long long)json_integer_value(index));
    j->with_auth = true;
    eu_call(j, "POST", buf_cstr(&p), spec, CALL_TIMEOUT_MS, s_updated);
    j->with_auth = false;
    buf_free(&p);
}

static void s_read(struct job *j)
{
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, s_got, "/services/%s", j->obj->id);
}

static void service_begin(struct job *j)
{
    s_read(j);
}

/* ---- unfinished recreates, found at start-up ------------------------------------------ */

static struct object *object_get(struct engine_updater *u, const char *engine, const char *kind, const char *id);

/* The containers an update renamed aside ("<name>-old-<id>"): each is an
 * update this router (or a previous run of it) did not finish. */
static void rc_listed(struct job *j, int err, int status, const char *body, size_t len)
{
    struct engine_updater *u = j->u;
    json_t *list = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_array(list)) {
        char why[CAUSE_LEN];
        eu_describe(j, err, status, body, len, why, sizeof why);
        LOG(u->log, LOG_WARN, "engine not checked for unfinished updates", F_STR("engine", docker_engine_name(j->eng->de)),
            F_STR("cause", why));
    }
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        const char *id = str(c, "Id");
        const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        if (!id || !engine_update_aside_name(name, id, NULL)) continue;
        struct object *o = object_get(u, docker_engine_name(j->eng->de), "container", id);
        if (o->job || o->recover) continue;
        set_str(&o->name, name + (*name == '/'));
        o->recover = true;
        job_start(u, o);
    }
    json_decref(list);
    eu_finish(j, NULL);
}

static void recover_scan(struct job *j)
{
    /* name filters match a part of the name; the exact form is checked. */
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/containers/json?all=1&filters=");
    url_encode(&p, "{\"name\":[\"-old-\"]}");
    eu_call(j, "GET", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, rc_listed);
    buf_free(&p);
}

static void scan_start(struct engine_updater *u, struct engine *e)
{
    struct job *j = job_new(u, e);
    e->scan = j;
    version_then_begin(j);
}

/* ---- public -------------------------------------------------------------------------- */

struct engine_updater *engine_updater_new(uv_loop_t *loop, const struct engine_update_opts *opts)
{
    struct engine_updater *u = xcalloc(1, sizeof *u);
    u->loop = loop;
    u->enabled = opts->enabled;
    u->log = opts->log;
    u->auth = opts->auth;
    u->self_id = xstrdup_or_null(opts->self_id && *opts->self_id ? opts->self_id : NULL);
    const char *prefix = opts->label_prefix && *opts->label_prefix ? opts->label_prefix : "webhook-router";
    struct buf tl;
    buf_init(&tl);
    buf_printf(&tl, "%s.tag", prefix);
    u->tag_label = buf_steal(&tl);
    buf_printf(&tl, "%s.replaces", prefix);
    u->replaces_label = buf_steal(&tl);
    u->cleanup = opts->cleanup;
    u->health_ms = opts->health_timeout_ms ? opts->health_timeout_ms : DEFAULT_HEALTH_MS;
    u->service_ms = opts->service_timeout_ms ? opts->service_timeout_ms : DEFAULT_SERVICE_MS;
    u->exit_check_ms = opts->exit_check_ms ? opts->exit_check_ms : DEFAULT_EXIT_CHECK_MS;
    u->on_outcome = opts->on_outcome;
    u->on_outcome_ud = opts->on_outcome_ud;
    u->nengines = opts->nengines;
    u->engines = xcalloc(opts->nengines ? opts->nengines : 1, sizeof *u->engines);
    for (size_t i = 0; i < opts->nengines; i++) u->engines[i].de = opts->engines[i];
    return u;
}

void engine_updater_recover(struct engine_updater *u)
{
    if (!u->enabled || u->closing || u->draining) return;
    for (size_t i = 0; i < u->nengines; i++)
        if (!u->engines[i].scan) scan_start(u, &u->engines[i]);
}

static struct object *find_object(struct engine_updater *u, const struct update_target *t)
{
    for (struct object *o = u->objects; o; o = o->next) {
        if (strcmp(o->engine, t->engine) != 0) continue;
        /* The container being recreated is the same object under its new id. */
        if (!strcmp(o->id, t->id) || (o->job && o->job->new_id && !strcmp(o->job->new_id, t->id))) return o;
    }
    return NULL;
}

static bool is_self(const struct engine_updater *u, const char *id)
{
    size_t n = u->self_id ? strlen(u->self_id) : 0;
    return n >= 12 && (!strncmp(id, u->self_id, n) || !strncmp(u->self_id, id, strlen(id)));
}

static struct object *object_get(struct engine_updater *u, const char *engine, const char *kind, const char *id)
{
    for (struct object *o = u->objects; o; o = o->next)
        if (!strcmp(o->engine, engine) && !strcmp(o->id, id)) return o;
    struct object *o = xcalloc(1, sizeof *o);
    o->engine = xstrdup(engine);
    o->kind = xstrdup(!strcmp(kind, "service") ? "service" : "container");
    o->id = xstrdup(id);
    o->next = u->objects;
    u->objects = o;
    return o;
}

int engine_updater_submit(struct engine_updater *u, const struct update_target *t, const struct push_event *ev)
{
    if (u->closing || u->draining) return -ECANCELED;
    bool known = false;
    for (size_t i = 0; i < u->nengines; i++)
        if (!strcmp(docker_engine_name(u->engines[i].de), t->engine)) known = true;
    if (!known) return -ENOENT;
    if (!ev->repository || !ev->tag) return -EINVAL;
    struct object *o = find_object(u, t);
    /* Renamed aside by an update: while that update runs it is its
     * object's old container (the push is the object's follow-up, as for
     * the new one); otherwise a leftover, never updated itself. */
    if (!(o && o->job) && !strcmp(t->kind, "container") && engine_update_aside_name(t->name, t->id, NULL)) {
        LOG(u->log, LOG_DEBUG, "update not done: a container set aside by an update", F_STR("container", t->name),
            F_STR("id", t->id), F_STR("engine", t->engine));
        return -EPERM;
    }
    if (!o) o = object_get(u, t->engine, t->kind, t->id);
    if (t->name && !o->job) set_str(&o->name, t->name);
    if (!u->enabled) {
        if (!o->warned)
            LOG(u->log, LOG_WARN, "update not done: engine updates are off", F_STR(o->kind, o->name), F_STR("id", o->id),
                F_STR("engine", o->engine), F_STR("note", "set ENGINE_UPDATES=1 (and allow POST, SERVICES, CONTAINERS, "
                                                          "IMAGES, NETWORKS in a socket proxy) to let the router update it"));
        o->warned = true;
        return -EPERM;
    }
    if (!strcmp(o->kind, "container") && is_self(u, o->id)) {
        if (!o->warned)
            LOG(u->log, LOG_WARN, "update not done: this is the router's own container", F_STR("container", o->name),
                F_STR("id", o->id), F_STR("engine", o->engine),
                F_STR("note", "the router never recreates itself; update it another way"));
        o->warned = true;
        return -EPERM;
    }
    set_str(&o->next_registry, ev->registry);
    set_str(&o->next_repository, ev->repository);
    set_str(&o->next_tag, ev->tag);
    set_str(&o->next_digest, ev->digest);
    bool queued = o->has_next;
    o->has_next = true;
    if (o->job) {
        LOG(u->log, LOG_INFO, queued ? "update follow-up replaced" : "update queued behind the running one",
            F_STR(o->kind, o->name), F_STR("id", o->id), F_STR("tag", ev->tag), F_STR("digest", ev->digest));
        return 0;
    }
    job_start(u, o);
    return 0;
}

void engine_updater_foreach(const struct engine_updater *u, update_status_fn fn, void *ud)
{
    for (const struct object *o = u->objects; o; o = o->next) {
        if (!o->outcome && !o->job) continue;   /* only warned about */
        struct update_status s = {.engine = o->engine, .kind = o->kind, .id = o->id, .name = o->name,
                                  .finished_ms = o->finished_ms, .outcome = o->outcome, .digest = o->digest,
                                  .running = o->job != NULL};
        fn(ud, &s);
    }
}

void engine_updater_counts(const struct engine_updater *u, update_count_fn fn, void *ud)
{
    for (const struct counter *c = u->counters; c; c = c->next) fn(ud, c->kind, c->outcome, c->n);
}

static void object_free(struct object *o)
{
    free_n(10, o->engine, o->kind, o->id, o->name, o->next_registry, o->next_repository, o->next_tag,
           o->next_digest, o->digest, o);
}

/* Stops a job where it stands (its call cancelled, nothing more sent). */
static void abandon(struct job *j, const char *note)
{
    struct object *o = j->obj;
    if (o)
        LOG(j->u->log, LOG_WARN, "update abandoned at shutdown", F_STR(o->kind, o->name), F_STR("id", o->id),
            F_STR("engine", o->engine), F_STR("old_id", j->old_id), F_STR("old_name", j->changed ? j->aside : NULL),
            F_STR("new_id", j->new_id), F_STR("note", note));
    http_call_cancel(j->call);
    j->call = NULL;
    if (o) o->has_next = false;
    eu_finish(j, NULL);
}

static void cancel_scans(struct engine_updater *u)
{
    for (size_t i = 0; i < u->nengines; i++)
        if (u->engines[i].scan) abandon(u->engines[i].scan, NULL);
}

static void on_drain_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_drain_tick(uv_timer_t *t)
{
    struct engine_updater *u = t->data;
    bool running = false;
    for (struct object *o = u->objects; o; o = o->next) running |= o->job != NULL;
    if (running && uv_now(u->loop) < u->drain_by) return;
    for (struct object *o = u->objects; o; o = o->next)
        if (o->job) abandon(o->job, "no safe point within its stop timeout and health wait");
    uv_timer_stop(t);
    void (*cb)(void *ud) = u->drained_cb;
    u->drained_cb = NULL;
    if (cb) cb(u->drained_ud);
}

void engine_updater_drain(struct engine_updater *u, void (*cb)(void *ud), void *ud)
{
    if (!u) {
        if (cb) cb(ud);
        return;
    }
    if (u->draining) return;   /* once: the first caller is told */
    u->draining = true;
    u->drained_cb = cb;
    u->drained_ud = ud;
    cancel_scans(u);
    uint64_t now = uv_now(u->loop);
    u->drain_by = now;
    for (struct object *o = u->objects; o; o = o->next) {
        struct job *j = o->job;
        o->has_next = false;   /* follow-ups are not started any more */
        if (!j) continue;
        if (!j->changed && !j->recovering) {
            /* Nothing changed yet (reading, pulling), or a Swarm service,
             * whose update the swarm completes or rolls back by itself. */
            abandon(j, strcmp(o->kind, "service") ? "nothing was changed yet"
                                                  : "the swarm completes or rolls the service update back itself");
            continue;
        }
        json_t *t = json_object_get(json_object_get(j->inspect, "Config"), "StopTimeout");
        long long stop = json_is_integer(t) && json_integer_value(t) > 0 ? (long long)json_integer_value(t)
                                                                          : DEFAULT_STOP_SECS;
        uint64_t by = now + (uint64_t)stop * 1000 + (j->has_health ? j->health_wait_ms : j->u->exit_check_ms) +
                      DRAIN_SLACK_MS;
        if (by > u->drain_by) u->drain_by = by;
        LOG(u->log, LOG_INFO, "shutdown waits for an update to finish or roll back", F_STR("container", j->name),
            F_STR("id", j->old_id), F_STR("engine", o->engine), F_INT("at_most_ms", (long long)(by - now)));
    }
    /* Told from the loop, never from inside the caller. */
    uv_timer_init(u->loop, &u->drain_timer);
    u->drain_timer.data = u;
    u->open_handles++;
    uv_timer_start(&u->drain_timer, on_drain_tick, 0, DRAIN_TICK_MS);
}

void engine_updater_close(struct engine_updater *u, void (*cb)(void *ud), void *ud)
{
    if (!u) {
        if (cb) cb(ud);
        return;
    }
    u->closing = true;
    u->closed_cb = cb;
    u->closed_ud = ud;
    cancel_scans(u);
    for (struct object *o = u->objects; o; o = o->next)
        if (o->job) abandon(o->job, NULL);
    if (u->draining) {
        uv_timer_stop(&u->drain_timer);
        uv_close((uv_handle_t *)&u->drain_timer, on_drain_closed);
        u->drained_cb = NULL;
    }
    for (struct object *o = u->objects, *next; o; o = next) {
        next = o->next;
        object_free(o);
    }
    u->objects = NULL;
    for (struct counter *c = u->counters, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    u->counters = NULL;
    free(u->engines);
    u->engines = NULL;
    u->nengines = 0;
    free(u->self_id);
    u->self_id = NULL;
    free(u->tag_label);
    u->tag_label = NULL;
    free(u->replaces_label);
    u->replaces_label = NULL;
    if (u->open_handles == 0) {
        if (cb) cb(ud);
        free(u);
    }
}
