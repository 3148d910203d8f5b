/* vgpu-patch: make Ollama load the vGPU shims. The command table and dispatch; each
 * subcommand lives in its own file. */
#include "cli.h"

#include <string.h>

static const struct vp_command commands[] = {
    {"ollama", cmd_ollama, "patch one Ollama install so every process loads the shims"},
    {"status", cmd_status, "what is patched, and whether the files still match"},
    {"verify", cmd_verify, "prove again that every process ends in the shims"},
    {"rollback", cmd_rollback, "restore the original files byte for byte"},
    {"ensure", cmd_ensure, "quick check for every service start: re-apply, restore, env file"},
    {"inspect", cmd_inspect, "ELF facts and routes to libcuda/NVML of files"},
    {"doctor", cmd_doctor, "everything that decides whether Ollama uses the vGPU"},
    {"migrate", cmd_migrate, "back up and remove the loader hooks of an earlier deployment"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: vgpu-patch COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < VP_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'vgpu-patch COMMAND --help' for the options of a command, and see "
                 "vgpu-patch(1).\nExit codes: 0 done, 1 error (nothing changed), 2 usage, "
                 "3 a route needs another mechanism,\n4 the tree differs from the manifest, "
                 "5 global loader hooks present.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr), VP_EXIT_USAGE;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
        return usage(stdout), VP_EXIT_OK;
    if (!strcmp(argv[1], "--version")) {
        printf("vgpu-patch %s\n", VGPU_VERSION);
        return VP_EXIT_OK;
    }
    for (size_t i = 0; i < VP_ARRAY_SIZE(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vgpu-patch: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return VP_EXIT_USAGE;
}
