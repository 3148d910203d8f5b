/* vgpu-bench-hello: the small program whose start the fallback benchmark times: a
 * dynamically linked main() that returns 0. */
int main(void)
{
    return 0;
}
