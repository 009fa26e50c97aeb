/* LD_PRELOAD for baresip in tests: ALSA's `null` device, paced like a real sound card.
 *
 * baresip 1.0 needs an audio player even when the phone only plays a file and records to another, and the
 * `null` device accepts every write at once, so its player thread spins a core. Each write here returns
 * when a device playing at the stream's rate would have taken it: deadlines from a monotonic start, so
 * nothing drifts.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define STREAMS 64
#define NS 1000000000LL

static long (*real_writei)(void *, const void *, unsigned long);
static int (*real_close)(void *);
static int (*params_malloc)(void **);
static void (*params_free)(void *);
static int (*params_current)(void *, void *);
static int (*params_rate)(const void *, unsigned int *, int *);
static struct stream { void *pcm; long long due_ns; unsigned rate; } streams[STREAMS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void resolve(void) {
    void *alsa = dlopen("libasound.so.2", RTLD_NOW | RTLD_NOLOAD);
    if (!alsa)
        alsa = dlopen("libasound.so.2", RTLD_NOW);
    real_writei = (long (*)(void *, const void *, unsigned long))dlsym(alsa, "snd_pcm_writei");
    real_close = (int (*)(void *))dlsym(alsa, "snd_pcm_close");
    params_malloc = (int (*)(void **))dlsym(alsa, "snd_pcm_hw_params_malloc");
    params_free = (void (*)(void *))dlsym(alsa, "snd_pcm_hw_params_free");
    params_current = (int (*)(void *, void *))dlsym(alsa, "snd_pcm_hw_params_current");
    params_rate = (int (*)(const void *, unsigned int *, int *))dlsym(alsa, "snd_pcm_hw_params_get_rate");
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * NS + t.tv_nsec;
}

static unsigned rate_of(void *pcm) {
    void *params = 0;
    unsigned rate = 0;
    if (params_malloc(&params) == 0) {
        if (params_current(pcm, params) == 0)
            params_rate(params, &rate, 0);
        params_free(params);
    }
    return rate ? rate : 8000;
}

long snd_pcm_writei(void *pcm, const void *buffer, unsigned long frames) {
    pthread_once(&once, resolve);
    long written = real_writei(pcm, buffer, frames);
    pthread_mutex_lock(&lock);
    struct stream *s = 0;
    for (int i = 0; i < STREAMS && !s; i++)
        if (streams[i].pcm == pcm)
            s = &streams[i];
    for (int i = 0; i < STREAMS && !s; i++)
        if (!streams[i].pcm) {
            s = &streams[i];
            s->pcm = pcm;
            s->rate = rate_of(pcm);
            s->due_ns = now_ns();
        }
    long long due = 0;
    if (s) {
        long long now = now_ns();
        if (s->due_ns < now - NS)
            s->due_ns = now; /* the player stalled for a second: restart the schedule, no burst */
        s->due_ns += (long long)frames * NS / s->rate;
        due = s->due_ns;
    }
    pthread_mutex_unlock(&lock);
    if (due) {
        struct timespec t = {due / NS, due % NS};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, 0);
    }
    return written;
}

int snd_pcm_close(void *pcm) {
    pthread_once(&once, resolve);
    pthread_mutex_lock(&lock);
    for (int i = 0; i < STREAMS; i++)
        if (streams[i].pcm == pcm)
            memset(&streams[i], 0, sizeof streams[i]);
    pthread_mutex_unlock(&lock);
    return real_close(pcm);
}
