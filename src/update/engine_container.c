/* engine_container.c - a container's update (see engine_update.h): inspect,
 * pull the picked <repo>@<digest> and check it, rename the old one aside,
 * create the new one with everything the old one had
 * (engine_update_build_create), connect its networks, set the old one's
 * restart policy to "no", stop it, start the new one, wait for it to run
 * (and be healthy), remove the old one; or roll back from any step after
 * the rename. Also the finishing or undoing of a recreate a killed router
 * left (engine_update_recover_decide). Each step is an engine call whose
 * callback starts the next (engine_job.h). */
#include "engine_job.h"

#include <stdio.h>
#include <string.h>

#include "url.h"

/* ---- container ------------------------------------------------------------------- */

static void c_fail(struct job *j, const char *what, const char *cause)
{
    struct object *o = j->obj;
    LOG(j->u->log, LOG_ERROR, "update failed", F_STR("container", j->name ? j->name : o->name), F_STR("id", o->id),
        F_STR("engine", o->engine), F_STR("image", j->ref), F_STR("error", what), F_STR("cause", cause),
        F_STR("note", "the container was not changed"));
    eu_finish(j, "failed");
}

static void c_fail_call(struct job *j, const char *what, int err, int status, const char *body, size_t len)
{
    char why[CAUSE_LEN];
    eu_describe(j, err, status, body, len, why, sizeof why);
    c_fail(j, what, why);
}

/* ---- rollback: remove the new one, rename the old back, restore, start ---- */

static void rb_rename(struct job *j);
static void rb_restore(struct job *j);
static void rb_start(struct job *j);
static void rb_verify(struct job *j);

/* The engine away (restarting: refused, reset, no answer) or failing
 * inside (5xx): the step is tried again with backoff, until RB_RETRY_MS
 * after the rollback began. Returns true when it will be. */
static bool rb_retry(struct job *j, void (*step)(struct job *j), int err, int status)
{
    if (!err && status < 500) return false;
    if (uv_now(j->u->loop) >= j->rb_deadline) return false;
    j->rb_backoff = j->rb_backoff ? j->rb_backoff * 2 : RB_BACKOFF_MS;
    if (j->rb_backoff > RB_BACKOFF_MAX_MS) j->rb_backoff = RB_BACKOFF_MAX_MS;
    eu_after(j, j->rb_backoff, step);
    return true;
}

/* A step that failed for good is noted, and the rollback goes on: each step
 * left undone makes the next one more needed, not less. The notes go into
 * the final error line. */
static void rb_note(struct job *j, const char *what, int err, int status, const char *body, size_t len)
{
    char why[CAUSE_LEN];
    eu_describe(j, err, status, body, len, why, sizeof why);
    buf_printf(&j->rb_notes, "%s%s: %s", j->rb_notes.len ? "; " : "", what, why);
}

/* The answer of a rollback step, ok or not: true when it failed and a retry
 * of step is scheduled (the caller returns). A failure for good is noted
 * and the rollback goes on. */
static bool rb_retried(struct job *j, void (*step)(struct job *j), bool ok, const char *what, int err, int status,
                       const char *body, size_t len)
{
    if (ok) return false;
    if (rb_retry(j, step, err, status)) return true;
    rb_note(j, what, err, status, body, len);
    return false;
}

static void rb_verified(struct job *j, int err, int status, const char *body, size_t len)
{
    if (rb_retry(j, rb_verify, err, status)) return;
    struct object *o = j->obj;
    json_t *doc = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *id = str(doc, "Id");
    bool running = json_is_true(json_object_get(json_object_get(doc, "State"), "Running"));
    bool back = id && !strcmp(id, j->old_id) && (running || !j->was_running);
    json_decref(doc);
    if (!back) {
        /* Say what is left where, so that a person can finish by hand. */
        if (!err && status != 200) rb_note(j, "reading the container by its name", err, status, body, len);
        LOG(j->u->log, LOG_ERROR, j->recovering ? "unfinished update could not be undone" : "rollback incomplete",
            F_STR("container", j->name), F_STR("engine", o->engine), F_STR("old_id", j->old_id),
            F_STR("old_name", j->renamed_back ? j->name : j->aside), F_STR("new_id", j->new_id),
            F_STR("name_now_on", id), F_BOOL("old_running", running && id && !strcmp(id, j->old_id)),
            F_STR("error", j->why), F_STR("cause", j->rb_notes.len ? buf_cstr(&j->rb_notes) : NULL));
        eu_finish(j, j->recovering ? NULL : "failed");
        return;
    }
    if (j->recovering)
        LOG(j->u->log, LOG_WARN, "unfinished update undone", F_STR("container", j->name), F_STR("id", j->old_id),
            F_STR("engine", o->engine), F_STR("removed", j->new_id), F_BOOL("running", running),
            F_STR("note", j->why));
    else
        LOG(j->u->log, LOG_ERROR, "update rolled back", F_STR("container", j->name), F_STR("id", j->old_id),
            F_STR("engine", o->engine), F_STR("image", j->ref), F_STR("error", j->why),
            F_STR("note", j->was_running ? "the old container runs again under its name"
                                         : "the old container is back under its name"));
    free(j->new_id);
    j->new_id = NULL;
    eu_finish(j, j->recovering ? NULL : "rolled_back");
}

static void rb_verify(struct job *j)
{
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/containers/");
    url_encode(&p, j->name);
    buf_puts(&p, "/json");
    eu_call(j, "GET", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, rb_verified);
    buf_free(&p);
}

static void rb_started(struct job *j, int err, int status, const char *body, size_t len)
{
    bool ok = !err && (status == 204 || status == 304);
    if (!rb_retried(j, rb_start, ok, "starting the old container", err, status, body, len)) rb_verify(j);
}

static void rb_start(struct job *j)
{
    if (!j->was_running) {
        rb_verify(j);
        return;
    }
    eu_call_at(j, "POST", NULL, CALL_TIMEOUT_MS, rb_started, "/containers/%s/start", j->old_id);
}

static void rb_restored(struct job *j, int err, int status, const char *body, size_t len)
{
    bool ok = !err && status == 200;
    if (rb_retried(j, rb_restore, ok, "restoring the old container's restart policy", err, status, body, len)) return;
    if (ok) j->policy_changed = false;
    rb_start(j);
}

static void rb_restore(struct job *j)
{
    if (!j->policy_changed) {
        rb_start(j);
        return;
    }
    json_t *b = json_pack("{s:O}", "RestartPolicy", j->restart_policy);
    eu_call_at(j, "POST", b, CALL_TIMEOUT_MS, rb_restored, "/containers/%s/update", j->old_id);
    json_decref(b);
}

static void rb_renamed(struct job *j, int err, int status, const char *body, size_t len)
{
    bool ok = !err && status == 204;
    if (rb_retried(j, rb_rename, ok, "renaming the old container back", err, status, body, len)) return;
    if (ok) j->renamed_back = true;
    rb_restore(j);
}

static void rb_rename(struct job *j)
{
    struct buf p;
    buf_init(&p);
    buf_printf(&p, "/containers/%s/rename?name=", j->old_id);
    url_encode(&p, j->name);
    eu_call(j, "POST", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, rb_renamed);
    buf_free(&p);
}

static void rb_remove_new(struct job *j);

static void rb_removed(struct job *j, int err, int status, const char *body, size_t len)
{
    bool ok = !err && (status == 204 || status == 404);
    if (!rb_retried(j, rb_remove_new, ok, "removing the new container", err, status, body, len)) rb_rename(j);
}

static void rb_remove_new(struct job *j)
{
    if (!j->new_id) {
        rb_rename(j);
        return;
    }
    eu_call_at(j, "DELETE", NULL, CALL_TIMEOUT_MS, rb_removed, "/containers/%s?force=true&v=false", j->new_id);
}

/* Puts the old container back: the new one removed, the old one renamed
 * back, its restart policy restored, started again if it ran; then checked.
 * Also how an unfinished recreate found at start-up is undone. */
static void rb_begin(struct job *j)
{
    j->rb_deadline = uv_now(j->u->loop) + RB_RETRY_MS;
    j->rb_backoff = 0;
    rb_remove_new(j);
}

static void rollback(struct job *j, const char *why)
{
    set_str(&j->why, why);
    LOG(j->u->log, LOG_WARN, "update failed, rolling back", F_STR("container", j->name), F_STR("id", j->old_id),
        F_STR("new_id", j->new_id), F_STR("error", why));
    rb_begin(j);
}

static void rollback_call(struct job *j, const char *what, int err, int status, const char *body, size_t len)
{
    char why[CAUSE_LEN];
    eu_describe(j, err, status, body, len, why, sizeof why);
    struct buf line;
    buf_init(&line);
    buf_printf(&line, "%s: %s", what, why);
    rollback(j, buf_cstr(&line));
    buf_free(&line);
}

/* ---- success ---- */

static void c_cleaned(struct job *j, int err, int status, const char *body, size_t len)
{
    const char *old_image = str(j->inspect, "Image");
    if (!err && status == 200) {
        LOG(j->u->log, LOG_INFO, "old image removed", F_STR("container", j->name), F_STR("image_id", old_image),
            F_INT("bytes_freed", j->old_image_size));
    } else {
        /* 409: another container (or another tag) still uses it: kept. */
        char why[CAUSE_LEN];
        eu_describe(j, err, status, body, len, why, sizeof why);
        LOG(j->u->log, status == 409 ? LOG_INFO : LOG_WARN, "old image kept", F_STR("container", j->name),
            F_STR("image_id", old_image), F_STR("cause", why));
    }
    eu_finish(j, "completed");
}

/* ENGINE_UPDATE_CLEANUP=1: the old image goes when nothing else uses it.
 * No force: the engine refuses (409) while any container, running or not,
 * or another tag still refers to it. */
static void c_cleanup(struct job *j)
{
    const char *old_image = str(j->inspect, "Image");
    if (!j->u->cleanup || !old_image || !strcmp(old_image, j->new_image_id ? j->new_image_id : "")) {
        eu_finish(j, "completed");
        return;
    }
    eu_call_at(j, "DELETE", NULL, CALL_TIMEOUT_MS, c_cleaned, "/images/%s", old_image);
}

static void c_old_removed(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || (status != 204 && status != 404)) {
        char why[CAUSE_LEN];
        eu_describe(j, err, status, body, len, why, sizeof why);
        LOG(j->u->log, LOG_WARN, "the old container could not be removed", F_STR("container", j->aside),
            F_STR("id", j->old_id), F_STR("cause", why));
    }
    struct object *o = j->obj;
    if (j->recovering) {
        set_str(&o->id, j->new_id);   /* the object is the new container now */
        LOG(j->u->log, LOG_WARN, "unfinished update finished", F_STR("container", j->name), F_STR("id", j->new_id),
            F_STR("engine", o->engine), F_STR("removed", j->old_id), F_STR("note", j->why));
        eu_finish(j, NULL);
        return;
    }
    LOG(j->u->log, LOG_INFO, "container updated", F_STR("container", j->name), F_STR("id", j->new_id),
        F_STR("old_id", j->old_id), F_STR("engine", o->engine), F_STR("image", j->ref),
        F_STR("digest", j->pick.digest[0] ? j->pick.digest : NULL), F_STR("image_id", j->new_image_id),
        F_BOOL("running", j->was_running), F_INT("pull_ms", j->pull_ms),
        F_INT("create_ms", j->create_ms), F_INT("stop_ms", j->stop_ms), F_INT("start_ms", j->start_ms),
        F_INT("health_ms", j->health_ms), F_INT("duration_ms", since(j, j->started)));
    c_cleanup(j);
}

static void c_remove_old(struct job *j)
{
    struct buf p;
    buf_init(&p);
    /* v=false: the volumes (named and anonymous) are the new container's now. */
    buf_printf(&p, "/containers/%s?force=true&v=false", j->old_id);
    eu_call(j, "DELETE", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, c_old_removed);
    buf_free(&p);
}

/* ---- start, exit check, health ---- */

static void c_poll(struct job *j);

static void c_polled(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        rollback_call(j, "inspecting the new container", err, status, body, len);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *state = json_object_get(doc, "State");
    const char *st = str(state, "Status");
    json_int_t restarts = json_integer_value(json_object_get(doc, "RestartCount"));
    const char *health = str(json_object_get(state, "Health"), "Status");
    char why[CAUSE_LEN];
    why[0] = '\0';
    if (!st || strcmp(st, "running") != 0 || restarts > 0)
        snprintf(why, sizeof why, "the new container %s (exit code %lld, %lld restarts)%s%s",
                 st && !strcmp(st, "restarting") ? "keeps restarting" : "exited",
                 (long long)json_integer_value(json_object_get(state, "ExitCode")), (long long)restarts,
                 str(state, "Error") && *str(state, "Error") ? ": " : "", str(state, "Error") ? str(state, "Error") : "");
    else if (health && !strcmp(health, "unhealthy"))
        snprintf(why, sizeof why, "the new container is unhealthy");
    bool healthy = !j->has_health || (health && !strcmp(health, "healthy"));
    json_decref(doc);
    if (why[0]) {
        j->health_ms = since(j, j->phase_started);
        rollback(j, why);
        return;
    }
    if (healthy && since(j, j->phase_started) >= (long long)j->u->exit_check_ms) {
        j->health_ms = since(j, j->phase_started);
        c_remove_old(j);
        return;
    }
    if (uv_now(j->u->loop) >= j->deadline) {
        j->health_ms = since(j, j->phase_started);
        snprintf(why, sizeof why, "the new container was not healthy within %llu s",
                 (unsigned long long)(j->health_wait_ms / 1000));
        rollback(j, why);
        return;
    }
    eu_after(j, POLL_MS, c_poll);
}

static void c_poll(struct job *j)
{
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_polled, "/containers/%s/json", j->new_id);
}

/* The end of a start or stop: its duration into *ms, and whether it
 * worked (else the rollback has begun). 304: it already was. */
static bool phase_done(struct job *j, long long *ms, int err, int status, const char *body, size_t len,
                       const char *doing)
{
    *ms = since(j, j->phase_started);
    if (!err && (status == 204 || status == 304)) return true;
    rollback_call(j, doing, err, status, body, len);
    return false;
}

static void c_started(struct job *j, int err, int status, const char *body, size_t len)
{
    if (!phase_done(j, &j->start_ms, err, status, body, len, "starting the new container")) return;
    /* A process that dies at once is a failed update too: look again
     * after exit_check_ms (and, with a HEALTHCHECK, until healthy). */
    j->phase_started = uv_now(j->u->loop);
    j->deadline = j->phase_started + (j->has_health ? j->health_wait_ms : j->u->exit_check_ms);
    eu_after(j, j->has_health ? POLL_MS : j->u->exit_check_ms, c_poll);
}

static void c_start_new(struct job *j)
{
    j->phase_started = uv_now(j->u->loop);
    eu_call_at(j, "POST", NULL, CALL_TIMEOUT_MS, c_started, "/containers/%s/start", j->new_id);
}

static void c_stopped(struct job *j, int err, int status, const char *body, size_t len)
{
    if (!phase_done(j, &j->stop_ms, err, status, body, len, "stopping the old container")) return;
    c_start_new(j);
}

static void c_stop(struct job *j)
{
    json_t *cfg = json_object_get(j->inspect, "Config");
    json_t *t = json_object_get(cfg, "StopTimeout");
    long long secs = json_is_integer(t) ? (long long)json_integer_value(t) : DEFAULT_STOP_SECS;
    j->phase_started = uv_now(j->u->loop);
    struct buf p;
    buf_init(&p);
    /* The engine sends the container's own StopSignal; t is its StopTimeout. */
    buf_printf(&p, "/containers/%s/stop?t=%lld", j->old_id, secs);
    eu_call(j, "POST", buf_cstr(&p), NULL, (uint64_t)(secs < 0 ? 0 : secs) * 1000 + CALL_TIMEOUT_MS, c_stopped);
    buf_free(&p);
}

static void c_no_restart_done(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        rollback_call(j, "setting the old container's restart policy to no", err, status, body, len);
        return;
    }
    j->policy_changed = true;
    c_stop(j);
}

/* Before the old container is stopped its restart policy becomes "no"
 * (restored on rollback): an engine restart mid-update must not start it
 * next to the new one, on the same volumes. */
static void c_stop_old(struct job *j)
{
    if (!j->was_running) {
        /* A stopped container is recreated, and left stopped. */
        c_remove_old(j);
        return;
    }
    const char *policy = str(j->restart_policy, "Name");
    if (!policy || !*policy || !strcmp(policy, "no")) {
        c_stop(j);
        return;
    }
    json_t *b = json_pack("{s:{s:s}}", "RestartPolicy", "Name", "no");
    eu_call_at(j, "POST", b, CALL_TIMEOUT_MS, c_no_restart_done, "/containers/%s/update", j->old_id);
    json_decref(b);
}

/* ---- create and connect ---- */

static void c_connect_next(struct job *j);

static void c_connected(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        json_t *c = json_array_get(j->plan.connect, j->connect_i);
        char what[CAUSE_LEN];
        snprintf(what, sizeof what, "connecting network %s", str(c, "Network"));
        rollback_call(j, what, err, status, body, len);
        return;
    }
    j->connect_i++;
    c_connect_next(j);
}

static void c_connect_next(struct job *j)
{
    json_t *c = json_array_get(j->plan.connect, j->connect_i);
    if (!c) {
        j->create_ms = since(j, j->phase_started);
        c_stop_old(j);
        return;
    }
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/networks/");
    url_encode(&p, str(c, "Network"));
    buf_puts(&p, "/connect");
    json_t *b = json_pack("{s:s, s:O}", "Container", j->new_id, "EndpointConfig", json_object_get(c, "EndpointConfig"));
    eu_call(j, "POST", buf_cstr(&p), b, CALL_TIMEOUT_MS, c_connected);
    json_decref(b);
    buf_free(&p);
}

static void c_created_checked(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        rollback_call(j, "inspecting the new container", err, status, body, len);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *image = str(doc, "Image");
    if (!image || strcmp(image, j->new_image_id) != 0) {
        char why[CAUSE_LEN];
        snprintf(why, sizeof why, "the new container runs image %.80s, not the pulled %.80s", image ? image : "(none)",
                 j->new_image_id);
        json_decref(doc);
        rollback(j, why);
        return;
    }
    json_decref(doc);
    c_connect_next(j);
}

static void c_created(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 201) {
        rollback_call(j, "creating the new container", err, status, body, len);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    set_str(&j->new_id, str(doc, "Id"));
    json_decref(doc);
    if (!j->new_id) {
        rollback(j, "creating the new container: the engine answered no Id");
        return;
    }
    /* The tag named in the create could have moved since the pull: the
     * new container must run the image pulled and checked, nothing else. */
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_created_checked, "/containers/%s/json", j->new_id);
}

static void c_renamed(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 204) {
        c_fail_call(j, "renaming the old container aside", err, status, body, len);
        return;
    }
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/containers/create?name=");
    url_encode(&p, j->name);
    eu_call(j, "POST", buf_cstr(&p), j->plan.body, CALL_TIMEOUT_MS, c_created);
    buf_free(&p);
}

static void c_recreate(struct job *j)
{
    char err[CAUSE_LEN];
    if (engine_update_build_create(j->inspect, j->ref, j->old_image_config, &j->plan, err, sizeof err) < 0) {
        c_fail(j, "building the new container's configuration", err);
        return;
    }
    /* The new container names the one it replaces: a router that stops
     * before the end (killed) finds both at its next start (recover_*). */
    json_t *labels = json_object_get(j->plan.body, "Labels");
    if (!json_is_object(labels)) {
        labels = json_object();
        json_object_set_new(j->plan.body, "Labels", labels);
    }
    json_object_set_new(labels, j->u->replaces_label, json_string(j->old_id));
    const char *id = j->old_id;
    struct buf a;
    buf_init(&a);
    buf_printf(&a, "%s-old-%.12s", j->name, id);
    j->aside = buf_steal(&a);
    j->phase_started = uv_now(j->u->loop);
    j->changed = true;
    struct buf p;
    buf_init(&p);
    buf_printf(&p, "/containers/%s/rename?name=", id);
    url_encode(&p, j->aside);
    eu_call(j, "POST", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, c_renamed);
    buf_free(&p);
}

/* Healthcheck.Test ["NONE"] switches the image's check off. */
static bool is_none(json_t *first)
{
    const char *s = json_string_value(first);
    return !s || !strcmp(s, "NONE");
}

static void c_old_image(struct job *j, int err, int status, const char *body, size_t len)
{
    /* Without the old image's config every value is kept as it was: worse
     * (the new image's defaults do not apply) but not wrong. */
    json_t *doc = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *cfg = json_object_get(doc, "Config");
    j->old_image_size = (long long)json_integer_value(json_object_get(doc, "Size"));
    if (cfg) j->old_image_config = json_incref(cfg);
    else
        LOG(j->u->log, LOG_WARN, "old image not found: its defaults are kept in the new container",
            F_STR("container", j->name), F_STR("image_id", str(j->inspect, "Image")));
    json_decref(doc);
    /* The health check the new container will have: the container's own
     * when the operator set one (it differs from the old image's), else
     * the new image's. Its timing sets the health wait. */
    json_t *own = json_object_get(json_object_get(j->inspect, "Config"), "Healthcheck");
    json_t *was = json_object_get(j->old_image_config, "Healthcheck");
    json_t *hc = json_array_size(json_object_get(own, "Test")) > 0 && !(was && json_equal(own, was)) ? own
                                                                                                    : j->new_image_health;
    json_t *test = json_object_get(hc, "Test");
    j->has_health = json_array_size(test) > 0 && !is_none(json_array_get(test, 0));
    j->health_wait_ms = engine_update_health_wait_ms(hc, j->u->health_ms);
    c_recreate(j);
}

static void c_new_image(struct job *j, int err, int status, const char *body, size_t len)
{
    j->pull_ms = since(j, j->phase_started);
    if (err || status != 200) {
        c_fail_call(j, "inspecting the pulled image", err, status, body, len);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    set_str(&j->new_image_id, str(doc, "Id"));
    json_decref(j->new_image_health);
    j->new_image_health = json_incref(json_object_get(json_object_get(doc, "Config"), "Healthcheck"));
    bool pulled = !j->pick.digest[0] || engine_pick_pulled(&j->pick, json_object_get(doc, "RepoDigests"));
    json_decref(doc);
    if (!pulled || !j->new_image_id) {
        c_fail(j, "pull", "the pulled image is not the pushed digest of the object's repository");
        return;
    }
    const char *old_image = str(j->inspect, "Image");
    if (!strcmp(j->new_image_id, old_image ? old_image : "")) {
        LOG(j->u->log, LOG_INFO, "container already runs the pushed image", F_STR("container", j->name),
            F_STR("id", j->old_id), F_STR("image", j->ref), F_STR("image_id", old_image),
            F_INT("pull_ms", j->pull_ms));
        eu_finish(j, "unchanged");
        return;
    }
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_old_image, "/images/%s/json", old_image ? old_image : "none");
}

static void c_pulled(struct job *j, int err, int status, const char *body, size_t len)
{
    if (!err && status == 200 && j->pull_lines.len) eu_scan_pull_line(j, j->pull_lines.data, j->pull_lines.len);
    if (err || status != 200 || j->pull_error) {
        j->pull_ms = since(j, j->phase_started);
        if (j->pull_error) c_fail(j, "pull", j->pull_error);
        else c_fail_call(j, "pull", err, status, body, len);
        return;
    }
    if (j->pick.digest[0])
        eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_new_image, "/images/%s@%s/json", j->pick.repo, j->pick.digest);
    else
        eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_new_image, "/images/%s:%s/json", j->pick.repo, j->pick.tag);
}

/* By the pushed digest, from the object's own repository: what is pulled
 * cannot be anything else, whatever the tag points to by now. By tag only
 * when the event carried no digest. */
static void c_pull(struct job *j)
{
    j->phase_started = uv_now(j->u->loop);
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/images/create?fromImage=");
    url_encode(&p, j->pick.repo);
    buf_puts(&p, "&tag=");
    url_encode(&p, j->pick.digest[0] ? j->pick.digest : j->pick.tag);
    /* The progress is scanned as it streams, not collected (it can be long). */
    j->streaming = j->with_auth = true;
    eu_call(j, "POST", buf_cstr(&p), NULL, PULL_TIMEOUT_MS, c_pulled);
    j->streaming = j->with_auth = false;
    buf_free(&p);
}

static void c_inspected(struct job *j, int err, int status, const char *body, size_t len)
{
    if (err || status != 200) {
        c_fail_call(j, "inspecting the container", err, status, body, len);
        return;
    }
    j->inspect = json_loadb(body, len, 0, NULL);
    const char *name = str(j->inspect, "Name");
    set_str(&j->name, name && name[0] == '/' ? name + 1 : name);
    set_str(&j->old_id, str(j->inspect, "Id"));
    j->was_running = json_is_true(json_object_get(json_object_get(j->inspect, "State"), "Running"));
    j->restart_policy = json_deep_copy(json_object_get(json_object_get(j->inspect, "HostConfig"), "RestartPolicy"));
    json_t *labels = json_object_get(json_object_get(j->inspect, "Config"), "Labels");
    if (!j->name || !j->old_id) {
        c_fail(j, "inspecting the container", "no Name or Id in the answer");
        return;
    }
    if (engine_update_aside_name(j->name, j->old_id, NULL)) {
        /* Renamed aside by an update since the push was routed. */
        LOG(j->u->log, LOG_INFO, "update skipped", F_STR("container", j->name), F_STR("id", j->old_id),
            F_STR("reason", "a container set aside by an update"));
        eu_finish(j, NULL);
        return;
    }
    if (json_is_true(json_object_get(json_object_get(j->inspect, "HostConfig"), "AutoRemove"))) {
        /* Stopping it would remove it (and its anonymous volumes): nothing
         * to roll back to. */
        c_fail(j, "not updated", "a --rm container is removed when stopped, so it could not be rolled back");
        return;
    }
    if (json_object_get(labels, "com.docker.swarm.task.id")) {
        c_fail(j, "not updated", "a Swarm task: label its service instead (the service is updated)");
        return;
    }
    if (eu_pick_own(j, str(json_object_get(j->inspect, "Config"), "Image"), labels) != 0) return;
    c_pull(j);
}

void engine_container_begin(struct job *j)
{
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, c_inspected, "/containers/%s/json", j->obj->id);
}

/* ---- unfinished recreates, found at start-up ------------------------------------------ */

static void rc_named(struct job *j, int err, int status, const char *body, size_t len)
{
    struct object *o = j->obj;
    if (err || (status != 200 && status != 404)) {
        char why[CAUSE_LEN];
        eu_describe(j, err, status, body, len, why, sizeof why);
        LOG(j->u->log, LOG_ERROR, "unfinished update left as found", F_STR("container", j->name),
            F_STR("old_name", j->aside), F_STR("id", j->old_id), F_STR("engine", o->engine), F_STR("cause", why));
        eu_finish(j, NULL);
        return;
    }
    json_t *named = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    bool was_running;
    const char *why;
    enum engine_recover_action act =
        engine_update_recover_decide(j->inspect, named, j->u->replaces_label, &was_running, &why);
    set_str(&j->why, why);
    j->was_running = was_running;
    if (act == RECOVER_LEAVE) {
        LOG(j->u->log, LOG_WARN, "unfinished update left as found", F_STR("container", j->name),
            F_STR("old_name", j->aside), F_STR("id", j->old_id), F_STR("engine", o->engine), F_STR("note", why));
        json_decref(named);
        eu_finish(j, NULL);
        return;
    }
    if (named) {
        set_str(&j->new_id, str(named, "Id"));
        /* The new one carries the policy the old one had before the update
         * set it to "no". */
        json_t *want = json_object_get(json_object_get(named, "HostConfig"), "RestartPolicy");
        json_t *now = json_object_get(json_object_get(j->inspect, "HostConfig"), "RestartPolicy");
        j->restart_policy = json_deep_copy(want);
        j->policy_changed = json_is_object(want) && !(now && json_equal(want, now));
    }
    json_decref(named);
    if (act == RECOVER_FINISH) c_remove_old(j);
    else rb_begin(j);
}

static void rc_inspected(struct job *j, int err, int status, const char *body, size_t len)
{
    struct object *o = j->obj;
    json_t *doc = !err && status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    size_t n;
    const char *name = str(doc, "Name");
    if (!doc || !engine_update_aside_name(name, o->id, &n)) {
        /* Gone, or renamed since the scan: nothing to do. */
        json_decref(doc);
        eu_finish(j, NULL);
        return;
    }
    j->inspect = doc;
    set_str(&j->old_id, str(doc, "Id"));
    set_str(&j->aside, name + (*name == '/'));
    free(j->name);
    j->name = xstrndup(j->aside, n);
    set_str(&o->name, j->name);
    struct buf p;
    buf_init(&p);
    buf_puts(&p, "/containers/");
    url_encode(&p, j->name);
    buf_puts(&p, "/json");
    eu_call(j, "GET", buf_cstr(&p), NULL, CALL_TIMEOUT_MS, rc_named);
    buf_free(&p);
}

void engine_container_recover(struct job *j)
{
    eu_call_at(j, "GET", NULL, CALL_TIMEOUT_MS, rc_inspected, "/containers/%s/json", j->obj->id);
}
