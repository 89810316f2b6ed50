/* engine_update_plan.c - the pure half of a container recreate: from an
 * inspect (GET /containers/<id>/json) to the create body and the networks
 * to connect afterwards. No I/O, so it is tested with real inspects.
 *
 * What other updaters got wrong, and this does not:
 * - values the container only had because the OLD image set them (Cmd,
 *   Entrypoint, Healthcheck, Labels, ...) are dropped, so the new image's
 *   own defaults apply; what the operator set stays (Env entries all stay:
 *   the operator's cannot be told from the image's);
 * - anonymous volumes are mounted again by name, so their data survives;
 * - every network keeps its aliases (minus the old short id, which names
 *   the old container), static addresses, links and driver options; the
 *   default bridge gets no aliases (the engine refuses them there);
 * - a Hostname that was only the old short id is dropped, so the new
 *   container gets its own. */
#include "engine_update_plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool json_equal_or_both_null(json_t *a, json_t *b)
{
    if (json_is_null(a)) a = NULL;
    if (json_is_null(b)) b = NULL;
    if (!a || !b) return a == b;
    return json_equal(a, b);
}

/* Removes from cfg what is exactly the old image's default, so the new
 * image's default applies (a healthcheck or command changed by the new
 * image is used, not frozen at the old one's). */
static void drop_image_defaults(json_t *cfg, json_t *img)
{
    static const char *const scalars[] = {"Cmd", "Entrypoint", "Healthcheck", "WorkingDir", "User",
                                          "StopSignal", "Shell", "OnBuild"};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        json_t *mine = json_object_get(cfg, scalars[i]);
        if (mine && json_equal_or_both_null(mine, json_object_get(img, scalars[i])))
            json_object_del(cfg, scalars[i]);
    }
    /* Env is kept whole. The engine merged the image's entries and the
     * operator's into one list (the operator's replacing the image's in
     * place), so an entry equal to the old image's may be the operator's
     * own setting: dropping it would silently change the app (a LOG_LEVEL
     * the new image defaults otherwise). Keeping an image default only
     * keeps the value the container has run with; what the new image
     * changes in such a key does not apply (see README). */
    /* Labels, ExposedPorts, Volumes: keys with the image's value. */
    static const char *const maps[] = {"Labels", "ExposedPorts", "Volumes"};
    for (size_t m = 0; m < sizeof maps / sizeof maps[0]; m++) {
        json_t *mine = json_object_get(cfg, maps[m]), *theirs = json_object_get(img, maps[m]);
        if (!json_is_object(mine) || !json_is_object(theirs)) continue;
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(mine, tmp, key, v) {
            json_t *iv = json_object_get(theirs, key);
            if (iv && json_equal(iv, v)) json_object_del(mine, key);
        }
    }
}

static bool is_default_network(const char *name)
{
    return !strcmp(name, "bridge") || !strcmp(name, "default");
}

/* The endpoint of one network as the create / connect calls want it. */
static json_t *endpoint_config(const char *net, json_t *ep, const char *short_id)
{
    json_t *out = json_object();
    json_t *v;
    if ((v = json_object_get(ep, "IPAMConfig")) && json_is_object(v) && json_object_size(v))
        json_object_set(out, "IPAMConfig", v);
    if ((v = json_object_get(ep, "Links")) && json_is_array(v) && json_array_size(v))
        json_object_set(out, "Links", v);
    if ((v = json_object_get(ep, "DriverOpts")) && json_is_object(v) && json_object_size(v))
        json_object_set(out, "DriverOpts", v);
    /* The old one is stopped before the new one starts: the address is
     * free again, and whatever relies on it (DHCP leases, ARP) still holds. */
    if ((v = json_object_get(ep, "MacAddress")) && json_is_string(v) && json_string_length(v))
        json_object_set(out, "MacAddress", v);
    json_t *aliases = json_object_get(ep, "Aliases");
    if (json_is_array(aliases) && !is_default_network(net)) {
        json_t *kept = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(aliases, i, a) {
            /* The engine adds the short id itself; copied, it would name
             * the old container in the new one's DNS. */
            if (json_is_string(a) && strcmp(json_string_value(a), short_id) != 0) json_array_append(kept, a);
        }
        if (json_array_size(kept)) json_object_set_new(out, "Aliases", kept);
        else json_decref(kept);
    }
    return out;
}

static bool mounted_at(json_t *hc, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(hc, "Mounts"), i, m) {
        const char *t = json_string_value(json_object_get(m, "Target"));
        if (t && !strcmp(t, dest)) return true;
    }
    json_array_foreach(json_object_get(hc, "Binds"), i, m) {
        /* "source:dest[:mode]" */
        const char *b = json_string_value(m);
        const char *colon = b ? strchr(b, ':') : NULL;
        if (!colon) continue;
        size_t n = strcspn(colon + 1, ":");
        if (strlen(dest) == n && !strncmp(colon + 1, dest, n)) return true;
    }
    return false;
}

/* Anonymous volumes (a volume mount no Bind or Mount asked for: the
 * image's VOLUME, or `-v /data`) are mounted again by name. Otherwise the
 * engine would make new empty ones and the data would stay behind. */
static void keep_anonymous_volumes(json_t *inspect, json_t *hc)
{
    json_t *mounts = json_object_get(hc, "Mounts");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(inspect, "Mounts"), i, m) {
        const char *type = json_string_value(json_object_get(m, "Type"));
        const char *name = json_string_value(json_object_get(m, "Name"));
        const char *dest = json_string_value(json_object_get(m, "Destination"));
        if (!type || strcmp(type, "volume") != 0 || !name || !dest || mounted_at(hc, dest)) continue;
        if (!json_is_array(mounts)) {
            mounts = json_array();
            json_object_set_new(hc, "Mounts", mounts);
        }
        json_t *rw = json_object_get(m, "RW");
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b}", "Type", "volume", "Source", name,
                                                "Target", dest, "ReadOnly", json_is_false(rw)));
    }
}

int engine_update_build_create(json_t *inspect, const char *image, json_t *old_image_config,
                               struct engine_create_plan *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *id = json_string_value(json_object_get(inspect, "Id"));
    json_t *cfg = json_object_get(inspect, "Config");
    json_t *hc = json_object_get(inspect, "HostConfig");
    if (!id || strlen(id) < 12 || !json_is_object(cfg) || !json_is_object(hc)) {
        snprintf(err, errlen, "the inspect has no Id, Config or HostConfig");
        return -EINVAL;
    }
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", id);

    json_t *body = json_deep_copy(cfg);
    if (json_is_object(old_image_config)) drop_image_defaults(body, old_image_config);
    json_object_set_new(body, "Image", json_string(image));
    const char *hostname = json_string_value(json_object_get(body, "Hostname"));
    if (hostname && !strcmp(hostname, short_id)) json_object_del(body, "Hostname");

    json_t *host = json_deep_copy(hc);
    keep_anonymous_volumes(inspect, host);
    json_object_set_new(body, "HostConfig", host);

    /* Networks: the one of NetworkMode (else the first) at create, the rest
     * connected after. host, none and container:<x> take no endpoints. */
    const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
    json_t *nets = json_object_get(json_object_get(inspect, "NetworkSettings"), "Networks");
    json_t *connect = json_array();
    json_t *endpoints = json_object();
    bool shared = mode && (!strcmp(mode, "host") || !strcmp(mode, "none") || !strncmp(mode, "container:", 10));
    if (json_is_object(nets) && !shared) {
        const char *first = mode && json_object_get(nets, mode) ? mode : NULL;
        const char *name;
        json_t *ep;
        json_object_foreach(nets, name, ep) {
            if (!first) first = name;
            json_t *conf = endpoint_config(name, ep, short_id);
            if (!strcmp(name, first)) json_object_set_new(endpoints, name, conf);
            else json_array_append_new(connect, json_pack("{s:s, s:o}", "Network", name, "EndpointConfig", conf));
        }
    }
    json_object_set_new(body, "NetworkingConfig", json_pack("{s:o}", "EndpointsConfig", endpoints));
    out->body = body;
    out->connect = connect;
    return 0;
}

void engine_create_plan_free(struct engine_create_plan *p)
{
    json_decref(p->body);
    json_decref(p->connect);
    memset(p, 0, sizeof *p);
}

/* RFC 3339 times as the engine writes them ("...T07:50:01.1234Z", the
 * fraction of any length): compared as times, not as text. */
static int time_cmp(const char *a, const char *b)
{
    size_t na = strcspn(a, ".Z"), nb = strcspn(b, ".Z");
    int c = na == nb ? strncmp(a, b, na) : (na < nb ? -1 : 1);
    if (c) return c;
    a += na;
    b += nb;
    if (*a == '.') a++;
    if (*b == '.') b++;
    for (int i = 0; i < 9; i++) {
        char da = *a >= '0' && *a <= '9' ? *a++ : '0';
        char db = *b >= '0' && *b <= '9' ? *b++ : '0';
        if (da != db) return da < db ? -1 : 1;
    }
    return 0;
}

bool engine_update_aside_name(const char *name, const char *id, size_t *n)
{
    if (!name || !id || strlen(id) < 12) return false;
    if (*name == '/') name++;
    size_t len = strlen(name);
    if (len < 18) return false;
    const char *tail = name + len - 17;
    if (strncmp(tail, "-old-", 5) != 0 || strncmp(tail + 5, id, 12) != 0) return false;
    if (n) *n = len - 17;
    return true;
}

enum engine_recover_action engine_update_recover_decide(json_t *aside, json_t *named, const char *replaces_label,
                                                        bool *was_running, const char **why)
{
    json_t *astate = json_object_get(aside, "State");
    const char *aid = json_string_value(json_object_get(aside, "Id"));
    *was_running = json_is_true(json_object_get(astate, "Running"));
    if (!named) {
        *why = "no container has its name: the old one is renamed back";
        return RECOVER_UNDO;
    }
    const char *replaces = json_string_value(
        json_object_get(json_object_get(json_object_get(named, "Config"), "Labels"), replaces_label));
    if (!aid || !replaces || strcmp(replaces, aid) != 0) {
        *why = "another container has its name and does not replace it: left as found";
        return RECOVER_LEAVE;
    }
    json_t *nstate = json_object_get(named, "State");
    const char *health = json_string_value(json_object_get(json_object_get(nstate, "Health"), "Status"));
    if (json_is_true(json_object_get(nstate, "Running")) && (!health || !strcmp(health, "healthy"))) {
        *why = "the new container runs: the old one is removed";
        return RECOVER_FINISH;
    }
    /* Stopped after the new one was created: the update stopped it, so it
     * ran before. */
    const char *finished = json_string_value(json_object_get(astate, "FinishedAt"));
    const char *created = json_string_value(json_object_get(named, "Created"));
    if (!*was_running && finished && created && time_cmp(finished, created) > 0) *was_running = true;
    *why = "the new container does not run (or is not healthy): the old one is put back";
    return RECOVER_UNDO;
}

/* Container ids are 64 lower-case hex digits. */
static size_t hex_run(const char *s)
{
    size_t n = 0;
    while ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')) n++;
    return n;
}

/* The n-th blank-separated field of a line (0-based), as a span. */
static bool field_of(const char *line, const char *end, int n, const char **f, size_t *len)
{
    const char *p = line;
    for (int k = 0;; k++) {
        while (p < end && *p == ' ') p++;
        if (p >= end) return false;
        const char *q = p;
        while (q < end && *q != ' ') q++;
        if (k == n) {
            *f = p;
            *len = (size_t)(q - p);
            return true;
        }
        p = q;
    }
}

static bool span_is(const char *f, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(f, s, len) == 0;
}

/* A mountinfo line of the process's own /etc/hostname, /etc/hosts or
 * /etc/resolv.conf, bind-mounted from the engine's
 * .../containers/<id>/<that file>: the id. Any other line naming
 * /containers/<id>/ is another container's (the host's mountinfo lists
 * every container's shm and the like). */
static bool id_of_mount(const char *line, const char *end, char out[65])
{
    static const char *const own[][2] = {
        {"/etc/hostname", "hostname"}, {"/etc/hosts", "hosts"}, {"/etc/resolv.conf", "resolv.conf"}};
    const char *root, *point;
    size_t rlen, plen;
    /* "36 35 98:0 <root> <mount point> <options> ... - <fs> <source> <options>" */
    if (!field_of(line, end, 3, &root, &rlen) || !field_of(line, end, 4, &point, &plen)) return false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (!span_is(point, plen, own[i][0])) continue;
        size_t flen = strlen(own[i][1]);
        /* root ends in "/containers/<64 hex>/<file>" */
        size_t tail = strlen("/containers/") + 64 + 1 + flen;
        if (rlen < tail) return false;
        const char *t = root + rlen - tail;
        if (memcmp(t, "/containers/", 12) != 0 || hex_run(t + 12) < 64 || t[12 + 64] != '/' ||
            memcmp(t + 12 + 65, own[i][1], flen) != 0)
            return false;
        memcpy(out, t + 12, 64);
        out[64] = '\0';
        return true;
    }
    return false;
}

/* A /proc/self/cgroup line, "<n>:<controllers>:<path>", whose path names
 * a container: "/docker/<id>" or ".../docker-<id>.scope". */
static bool id_of_cgroup(const char *line, const char *end, char out[65])
{
    const char *p = line;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p == line || p >= end || *p != ':') return false;
    const char *path = memchr(p + 1, ':', (size_t)(end - p - 1));
    if (!path) return false;
    static const char *const marks[] = {"/docker/", "docker-"};
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        size_t ml = strlen(marks[m]);
        for (const char *q = path; q + ml + 64 <= end; q++) {
            if (memcmp(q, marks[m], ml) != 0 || hex_run(q + ml) != 64) continue;
            memcpy(out, q + ml, 64);
            out[64] = '\0';
            return true;
        }
    }
    return false;
}

bool engine_update_find_container_id(const char *text, char out[65])
{
    /* Line by line, and only lines that describe this process: run outside
     * a container, the host's mountinfo names other containers'
     * directories, which must not be taken for the router's own. */
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (id_of_cgroup(line, end, out) || id_of_mount(line, end, out)) return true;
        line = *end ? end + 1 : end;
    }
    return false;
}
