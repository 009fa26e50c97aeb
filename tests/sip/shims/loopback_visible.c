/* LD_PRELOAD for Janus in tests: loopback looks like an ordinary interface, every other one looks down.
 *
 * Janus gathers ICE candidates on the interfaces getifaddrs() reports, skipping IFF_LOOPBACK ones; with none
 * left it lets libnice gather on every other interface. Tests keep media on 127.0.0.1, so here 127.0.0.1 is
 * the only usable interface Janus can see.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real_getifaddrs)(struct ifaddrs **);
    if (!real_getifaddrs)
        real_getifaddrs = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real_getifaddrs(ifap);
    if (rc != 0)
        return rc;
    for (struct ifaddrs *ifa = *ifap; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_flags & IFF_LOOPBACK)
            ifa->ifa_flags &= ~IFF_LOOPBACK;
        else
            ifa->ifa_flags &= ~(IFF_UP | IFF_RUNNING);
    }
    return 0;
}
