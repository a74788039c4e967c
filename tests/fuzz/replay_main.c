/* Replays fuzz corpus files through a fuzz target without libFuzzer, so the
 * corpus is a regression test under any compiler. Arguments are files or
 * directories (every regular file in them, in name order), so inputs added
 * to a corpus directory are replayed without re-running cmake. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as in libFuzzer: targets with start-up work define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static uint8_t buf[1 << 20];

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 1;
}

static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), done = 0;

    if (n < 0) {
        perror(dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        if (done >= 0 && names[i]->d_name[0] != '.'
            && snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path)
            && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            done = replay_file(path) < 0 ? -1 : done + 1;
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    int total = 0;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n;

        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "no inputs replayed: give corpus files or directories\n");
        return 1;
    }
    printf("replayed %d inputs\n", total);
    return 0;
}
