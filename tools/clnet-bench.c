/* clnet-bench — lists OpenCL devices and compares them on clnet's workloads.
 * Uses only the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clnet/clnet.h>

static const char *type_name(clnet_device_type t)
{
    switch (t) {
    case CLNET_DEVICE_CPU: return "CPU";
    case CLNET_DEVICE_GPU: return "GPU";
    case CLNET_DEVICE_ACCELERATOR: return "accelerator";
    default: return "other";
    }
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

static int list_devices(void)
{
    char err[2048];
    clnet_system *sys;
    clnet_status st = clnet_system_query(&sys, err, sizeof err);
    if (st) {
        fprintf(stderr, "clnet-bench: %s\n", err);
        return 1;
    }
    for (int p = 0; p < sys->platform_count; p++) {
        const clnet_platform_info *pi = &sys->platforms[p];
        printf("platform %d: %s (%s)\n", p, pi->name, pi->version);
        if (pi->note[0])
            printf("  %s\n", pi->note);
        for (int d = 0; d < pi->device_count; d++) {
            const clnet_device_info *di = &pi->devices[d];
            printf("  %s%d:%d  %s\n", di->is_default ? "*" : " ", di->platform_index,
                   di->device_index, di->name);
            printf("        type %s, %u compute units, %u MHz\n", type_name(di->type),
                   di->compute_units, di->clock_mhz);
            printf("        memory %.0f MiB, max allocation %.0f MiB, local memory %.0f KiB%s\n",
                   mib(di->global_mem_bytes), mib(di->max_alloc_bytes),
                   (double)di->local_mem_bytes / 1024.0,
                   di->local_mem_is_global ? " (emulated in global memory)" : "");
            printf("        max work-group %zu, preferred float vector %u, fp16 %s, fp64 %s\n",
                   di->max_work_group_size, di->preferred_vector_width_float,
                   di->has_fp16 ? "yes" : "no", di->has_fp64 ? "yes" : "no");
            printf("        %s, driver %s\n", di->opencl_c_version, di->driver_version);
        }
    }
    printf("(* = default device: CLNET_DEVICE or --device overrides it)\n");
    clnet_system_free(sys);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: clnet-bench --list\n"
               "  --list        list every OpenCL platform and device\n"
               "  --version     print clnet's version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list"))
            return list_devices();
        if (!strcmp(argv[i], "--version")) {
            printf("clnet %s\n", clnet_version());
            return 0;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "clnet-bench: unknown argument \"%s\"\n", argv[i]);
        usage(stderr);
        return 2;
    }
    return 0;
}
