/* A stand-in for "the real driver" that verification puts first on LD_LIBRARY_PATH:
 * if any route to libcuda.so.1 / libnvidia-ml.so.1 were still open, the loader would
 * find this file, and the check names it. It does nothing else. */
__attribute__((visibility("default"))) const int vgpu_verification_decoy = 1;
