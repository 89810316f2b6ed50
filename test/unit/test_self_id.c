/* The router's own container id (engine_update_find_container_id), from
 * the text of /proc/self/mountinfo and /proc/self/cgroup as Docker leaves
 * it inside a container, and as a host shows it outside one: there other
 * containers' directories are named, and none of them is the router. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine_update_plan.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* Inside a container: Docker bind-mounts its hostname, hosts and
 * resolv.conf from <data-root>/containers/<id>/. */
static void test_inside_a_container(void **s)
{
    (void)s;
    char out[65];
    const char *text =
        "612 590 0:50 / / rw,relatime master:301 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X\n"
        "613 612 0:53 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        "638 612 254:1 /var/lib/docker/containers/" ID "/resolv.conf /etc/resolv.conf rw,relatime - ext4 "
        "/dev/vda1 rw\n"
        "639 612 254:1 /var/lib/docker/containers/" ID "/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
        "640 612 254:1 /var/lib/docker/containers/" ID "/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw\n";
    assert_true(engine_update_find_container_id(text, out));
    assert_string_equal(out, ID);
    /* Only resolv.conf, and a data-root that is a file system of its own
     * (the root inside it starts at /containers). */
    text = "701 600 8:3 /containers/" ID "/resolv.conf /etc/resolv.conf rw - xfs /dev/sdb1 rw\n";
    assert_true(engine_update_find_container_id(text, out));
    assert_string_equal(out, ID);
    /* cgroup v1 */
    assert_true(engine_update_find_container_id("12:pids:/docker/" ID "\n0::/\n", out));
    assert_string_equal(out, ID);
    assert_true(engine_update_find_container_id("1:name=systemd:/system.slice/docker-" ID ".scope\n", out));
    assert_string_equal(out, ID);
}

/* Outside a container, on a Docker host: the host's mountinfo names every
 * running container's shm, and maybe a bind of another container's file
 * somewhere else. Old code took OTHER from the first such line. */
static void test_outside_a_container(void **s)
{
    (void)s;
    char out[65] = "";
    const char *text =
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "180 27 0:45 / /var/lib/docker/containers/" OTHER "/mounts/shm rw,nosuid,nodev,noexec,relatime "
        "shared:92 - tmpfs shm rw,size=65536k\n"
        "181 27 0:46 / /var/lib/docker/overlay2/" OTHER "/merged rw,relatime - overlay overlay rw\n"
        "182 27 254:0 /var/lib/docker/containers/" OTHER "/hostname /srv/copy/hostname rw - ext4 /dev/vda rw\n"
        "183 27 254:0 /var/lib/docker/containers/" OTHER "/hostname /etc/hostname.bak rw - ext4 /dev/vda rw\n"
        "184 27 0:47 / /run/docker/netns/" OTHER " rw - nsfs nsfs rw\n";
    assert_false(engine_update_find_container_id(text, out));
    assert_false(engine_update_find_container_id("0::/user.slice/user-1000.slice/session-3.scope\n", out));
    assert_false(engine_update_find_container_id("12:pids:/user.slice\n", out));
    assert_false(engine_update_find_container_id("", out));
    /* A hostname bind that is not under containers/<id>/. */
    assert_false(engine_update_find_container_id("9 1 8:1 /etc/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n",
                                                 out));
    /* Short ids and a wrong file name. */
    assert_false(engine_update_find_container_id(
        "9 1 8:1 /var/lib/docker/containers/0123/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n", out));
    assert_false(engine_update_find_container_id(
        "9 1 8:1 /var/lib/docker/containers/" ID "/hosts /etc/hostname rw - ext4 /dev/sda1 rw\n", out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inside_a_container),
        cmocka_unit_test(test_outside_a_container),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
