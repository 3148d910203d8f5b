# shellcheck shell=sh disable=SC2154,SC2046,SC2086
# (variables come from run-bench.sh; `set -- $(summary ...)` and `echo $list` split on purpose)
# report.sh: sourced by run-bench.sh. Statistics over vgpu-bench-run's result lines (one line
# of key=value fields per run), the printed table and the optional JSON.

# values FILE KEY: the KEY= field of every line of FILE.
values() {
    awk -v k="$2" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1)
                         print substr($i, length(k) + 2) }' "$1"
}

# field FILE KEY: the first one.
field() {
    values "$1" "$2" | head -n 1
}

# summary FILE KEY: "median min p95 max count" of a numeric field.
summary() {
    values "$1" "$2" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "0 0 0 0 0"; exit }
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        p = int(0.95 * NR); if (p < 0.95 * NR) p++; if (p < 1) p = 1
        print m, a[1], a[p], a[NR], NR }'
}

# calc EXPR: a number computed by awk (variables: none; pass the numbers in the expression).
calc() {
    awk "BEGIN { print $1 }"
}

# ms NS, mib KB, mb BYTES: human units (ms adapts its decimals).
ms() {
    awk -v n="$1" 'BEGIN { v = n / 1e6; printf(v < 10 ? "%.2f ms" : v < 1000 ? "%.1f ms" : "%.0f ms", v) }'
}
mib() {
    awk -v n="$1" 'BEGIN { printf(n < 0 ? "-" : "%.1f MiB", n / 1024) }'
}
mb() {
    awk -v n="$1" 'BEGIN { printf(n >= 1e9 ? "%.2f GB" : "%.1f MB", n >= 1e9 ? n / 1e9 : n / 1e6) }'
}

# verdict OK: PASS or MISS.
verdict() {
    if [ "$1" = 1 ]; then echo PASS; else echo MISS; fi
}

# by_exe FILE: the children's table of a traced run, "name N x, largest P" per program.
by_exe() {
    field "$1" by_exe | tr ',' '\n' | awk -F: 'NF == 3 {
        printf("%s%s x%d (%.1f MiB)", sep, $1, $2, $3 / 1024); sep = ", " } END { if (!sep) printf("none") }'
}

machine_facts() {
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    cores=$(nproc)
    mem=$(awk '/^MemTotal:/ { printf("%.1f GiB", $2 / 1048576) }' /proc/meminfo)
    fstype=$(df -PT "$dir" | awk 'NR == 2 { print $2 }')
    kernel=$(uname -sr)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
    fault=$(sed -n 's/^VGPU_FAULT_INJECTION:[A-Z]*=//p' "$build/CMakeCache.txt")
    sanitize=$(sed -n 's/^VGPU_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
    pe_version=$("$patchelf" --version 2>/dev/null | head -n 1)
}

tree_facts() {
    tree_bytes=$(find "$cache/usr/local" -type f -printf '%s\n' | awk '{ s += $1 } END { printf("%.0f", s) }')
    tree_files=$(find "$cache/usr/local" -type f | wc -l)
    big_files=$(cd "$cache/usr/local" && find . -type f -size +10M -printf '%s %P\n' | sort -k 2 |
        awk '{ printf("%s          %-40s %8.1f MB", sep, $2, $1 / 1e6); sep = "\n" }')
}

report() {
    machine_facts
    tree_facts
    set -- $(summary "$results/cp-all" wall_ns)
    cpall_med=$1 cpall_min=$2
    set -- $(summary "$results/cp-rewritten" wall_ns)
    cpr_med=$1 cpr_min=$2
    set -- $(summary "$results/cp-rewritten-fsync" wall_ns)
    cprs_med=$1 cprs_min=$2
    set -- $(summary "$results/apply" wall_ns)
    apply_med=$1 apply_min=$2
    set -- $(summary "$results/dry-run" wall_ns)
    dry_med=$1 dry_min=$2
    set -- $(summary "$results/apply-phases" prepare_ns)
    prep_med=$1 prep_min=$2
    set -- $(summary "$results/apply-phases" write_ns)
    write_med=$1 write_min=$2
    set -- $(summary "$results/apply-phases" verify_ns)
    vphase_med=$1 vphase_min=$2
    set -- $(summary "$results/naive" wall_ns)
    naive_med=$1 naive_min=$2
    set -- $(summary "$results/naive" tree_maxrss_kb)
    naive_rss=$4
    set -- $(summary "$results/status" wall_ns)
    status_med=$1 status_min=$2 status_p95=$3 status_n=$5
    set -- $(summary "$results/verify" wall_ns)
    verify_med=$1 verify_min=$2
    set -- $(summary "$results/rollback" wall_ns)
    rollback_med=$1 rollback_min=$2
    for c in apply status verify rollback; do
        eval "${c}_self=\$(field \"\$results/$c.trace\" self_hwm_kb)"
        eval "${c}_kids=\$(field \"\$results/$c.trace\" children_max_hwm_kb)"
        eval "${c}_kids_exe=\$(field \"\$results/$c.trace\" children_max_exe)"
        eval "${c}_missed=\$(field \"\$results/$c.trace\" unmeasured)"
    done
    self_max=$apply_self self_max_cmd=ollama
    for c in status verify rollback; do
        eval "v=\$${c}_self"
        [ "$v" -le "$self_max" ] || { self_max=$v; self_max_cmd=$c; }
    done
    patchelf_kids=$(field "$results/apply.trace" by_exe | tr ',' '\n' | awk -F: '$1 == "patchelf" { print $2 ":" $3 }')

    r_apply_cpr=$(calc "$apply_med / $cpr_med")
    r_apply_cprs=$(calc "$apply_med / $cprs_med")
    r_naive_apply=$(calc "$naive_med / $apply_med")
    r_apply_cpall=$(calc "$apply_med / $cpall_med")
    r_noverify_cpr=$(calc "($apply_med - $verify_med) / $cpr_med")
    r_write_cpr=$(calc "$write_med / $cpr_med")
    r_write_cprs=$(calc "$write_med / $cprs_med")
    g_copy=$(calc "($r_apply_cpr <= 1.2) ? 1 : 0")
    g_naive=$(calc "($r_naive_apply >= 10) ? 1 : 0")
    g_rss=$(calc "($self_max < 65536) ? 1 : 0")
    g_status=$(calc "($status_med < 20e6) ? 1 : 0")
    x() { awk -v v="$1" 'BEGIN { printf(v < 10 ? "%.2fx" : "%.1fx", v) }'; }
    row() { printf '%-50s %10s %10s   %s\n' "$1" "$2" "$3" "$4"; }

    echo
    echo "vgpu-patch benchmark: full-size Ollama era-E tree; warm page cache; $repeat runs per step"
    echo "machine   $cpu, $cores cores, $mem RAM, $fstype ($dir), $kernel"
    echo "          load average at start $load_start, at end $load (other work adds noise)"
    echo "build     $build_type, VGPU_FAULT_INJECTION=$fault, VGPU_SANITIZE=$sanitize; $pe_version;" \
        "tree $gen_state"
    echo "tree      $(mb "$tree_bytes") in $tree_files files; the large ones:"
    echo "$big_files"
    echo "rewrites  $(wc -l <"$work/rewritten") files of $(mb "$rewritten_bytes")" \
        "(bytes_written $(mb "$bytes_written")): $(echo $rewritten_rel | sed 's|usr/local/||g')"
    echo "naive     $naive_edits patchelf edits on $(echo $naive_files | wc -w) files of" \
        "$(mb "$naive_bytes"): $naive_files"
    echo
    row "step" "median" "min" "peak RSS (own VmHWM; children: largest)"
    row "(1) cp -a of the whole tree ($(mb "$tree_bytes"))" "$(ms "$cpall_med")" "$(ms "$cpall_min")" ""
    row "(2) cp of the files vgpu-patch rewrites" "$(ms "$cpr_med")" "$(ms "$cpr_min")" ""
    row "    the same + fsync of the copies (reference)" "$(ms "$cprs_med")" "$(ms "$cprs_min")" ""
    row "(3) vgpu-patch ollama (apply incl. verification)" "$(ms "$apply_med")" "$(ms "$apply_min")" \
        "own $(mib "$apply_self"); children $(mib "$apply_kids") ($apply_kids_exe)"
    row "    its phases: prepare (discover, checks, plan)" "$(ms "$prep_med")" "$(ms "$prep_min")" \
        "(vgpu-patch's own timings_ms)"
    row "                write (copy, hash, edit, check, fsync, rename)" "$(ms "$write_med")" \
        "$(ms "$write_min")" ""
    row "                verify (lists, probes)" "$(ms "$vphase_med")" "$(ms "$vphase_min")" ""
    row "    --dry-run of it (discover, inspect, plan)" "$(ms "$dry_med")" "$(ms "$dry_min")" ""
    row "(4) naive: $naive_edits x patchelf, in place" "$(ms "$naive_med")" "$(ms "$naive_min")" \
        "patchelf $(mib "$naive_rss") (largest invocation)"
    row "(5) vgpu-patch status ($status_n runs, p95 $(ms "$status_p95"))" "$(ms "$status_med")" \
        "$(ms "$status_min")" "own $(mib "$status_self")"
    row "(6) vgpu-patch verify" "$(ms "$verify_med")" "$(ms "$verify_min")" \
        "own $(mib "$verify_self"); children $(mib "$verify_kids") ($verify_kids_exe)"
    row "(6) vgpu-patch rollback" "$(ms "$rollback_med")" "$(ms "$rollback_min")" \
        "own $(mib "$rollback_self")"
    echo
    echo "children of vgpu-patch ollama (one traced run): $(by_exe "$results/apply.trace")"
    if [ -n "$patchelf_kids" ]; then
        echo "  of which patchelf: ${patchelf_kids%%:*} runs, largest $(mib "${patchelf_kids#*:}")"
    else
        echo "  of which patchelf: none (no file needed it; vgpu-patch wrote every file itself)"
    fi
    echo "naive result: bin/ollama --version runs after the edits: $naive_runs"
    echo
    printf '%-46s %-24s %-10s %s\n' "goal (informational)" "measured (medians)" "target" "result"
    printf '%-46s %-24s %-10s %s\n' "apply vs cp of the files it rewrites" \
        "$(x "$r_apply_cpr")" "<= 1.2x" "$(verdict "$g_copy")"
    printf '%-46s %-24s %-10s %s\n' "naive method vs apply" "$(x "$r_naive_apply")" ">= 10x" \
        "$(verdict "$g_naive")"
    printf '%-46s %-24s %-10s %s\n' "vgpu-patch own peak RSS (largest in: $self_max_cmd)" \
        "$(mib "$self_max")" "< 64 MiB" "$(verdict "$g_rss")"
    printf '%-46s %-24s %-10s %s\n' "vgpu-patch status" "$(ms "$status_med")" "< 20 ms" \
        "$(verdict "$g_status")"
    printf '%-46s %-24s\n' "reference: apply vs cp + fsync of those files" "$(x "$r_apply_cprs")"
    printf '%-46s %-24s\n' "reference: apply vs cp -a of the whole tree" "$(x "$r_apply_cpall")"
    printf '%-46s %-24s\n' "reference: (apply - verify) vs cp, estimate" "$(x "$r_noverify_cpr")"
    printf '%-46s %-24s\n' "reference: write phase vs cp of those files" "$(x "$r_write_cpr")"
    printf '%-46s %-24s\n' "reference: write phase vs cp + fsync of them" "$(x "$r_write_cprs")"
    missed=$((apply_missed + status_missed + verify_missed + rollback_missed))
    [ "$missed" = 0 ] || echo "note: $missed traced processes exited before their peak could be read"
    echo
    [ -z "$json" ] || report_json >"$json"
    [ -z "$json" ] || echo "JSON: $json"
}

report_json() {
    j() { printf '"%s": {"median_ms": %s, "min_ms": %s}' "$1" "$(calc "$2 / 1e6")" "$(calc "$3 / 1e6")"; }
    cat <<EOF
{
  "schema": 1,
  "machine": {"cpu": "$cpu", "cores": $cores, "memory": "$mem", "filesystem": "$fstype",
              "kernel": "$kernel", "load_start": "$load_start", "load_end": "$load"},
  "build": {"type": "$build_type", "fault_injection": "$fault", "sanitize": "$sanitize",
            "patchelf": "$pe_version"},
  "warm_cache": true,
  "repeat": $repeat,
  "tree_bytes": $tree_bytes,
  "rewritten_files": [$(echo $rewritten_rel | sed 's|usr/local|"/usr/local|g; s| |", |g; s|$|"|')],
  "rewritten_bytes": $rewritten_bytes,
  "bytes_written": $bytes_written,
  "naive_edits": $naive_edits,
  "naive_bytes": $naive_bytes,
  $(j cp_all "$cpall_med" "$cpall_min"),
  $(j cp_rewritten "$cpr_med" "$cpr_min"),
  $(j cp_rewritten_fsync "$cprs_med" "$cprs_min"),
  $(j apply "$apply_med" "$apply_min"),
  $(j apply_dry_run "$dry_med" "$dry_min"),
  $(j apply_phase_prepare "$prep_med" "$prep_min"),
  $(j apply_phase_write "$write_med" "$write_min"),
  $(j apply_phase_verify "$vphase_med" "$vphase_min"),
  $(j naive "$naive_med" "$naive_min"),
  $(j verify "$verify_med" "$verify_min"),
  $(j rollback "$rollback_med" "$rollback_min"),
  "status": {"runs": $status_n, "median_ms": $(calc "$status_med / 1e6"), "min_ms": $(calc "$status_min / 1e6"), "p95_ms": $(calc "$status_p95 / 1e6")},
  "peak_rss_kib": {"apply_self": $apply_self, "apply_children_max": $apply_kids,
                   "status_self": $status_self, "verify_self": $verify_self,
                   "verify_children_max": $verify_kids, "rollback_self": $rollback_self,
                   "naive_patchelf_max": $naive_rss},
  "ratios": {"apply_vs_cp_rewritten": $r_apply_cpr, "apply_vs_cp_rewritten_fsync": $r_apply_cprs,
             "naive_vs_apply": $r_naive_apply, "apply_vs_cp_all": $r_apply_cpall,
             "apply_minus_verify_vs_cp_rewritten": $r_noverify_cpr,
             "write_phase_vs_cp_rewritten": $r_write_cpr,
             "write_phase_vs_cp_rewritten_fsync": $r_write_cprs},
  "goals": {"apply_le_1.2x_cp": $( [ "$g_copy" = 1 ] && echo true || echo false),
            "naive_ge_10x_apply": $( [ "$g_naive" = 1 ] && echo true || echo false),
            "own_rss_lt_64mib": $( [ "$g_rss" = 1 ] && echo true || echo false),
            "status_lt_20ms": $( [ "$g_status" = 1 ] && echo true || echo false)}
}
EOF
}
