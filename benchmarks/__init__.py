"""Benchmarks: ``python -m benchmarks [--quick] [--json FILE] [name ...]`` (``make bench``).

Every module ``benchmarks/bench_<name>.py`` defines ``figures(quick) -> (figures, lines)``:
the named figures it measures (a subset of :data:`FIGURES`, as floats) and its report lines;
``run()`` returns the full run's lines. ``__main__`` runs them in name order, prints the
reports and, with ``--json``, writes every named figure to one file. Benchmarks use the
emulated hardware and seeded data, so runs are comparable; quick mode
(``--quick`` or ``COLDVAULT_BENCH_QUICK=1``) runs tiny sizes whose figures only prove that
every figure is produced.
"""

#: the named figures, tracked from run to run (docs/benchmarks.md), and what each one is
FIGURES = {
    "appliance_vs_sign_ecdsa_500": "appliance time / sign_ecdsa time, 500 inputs",
    "appliance_vs_raw_ecdsa_500": "appliance time / bare CKM_ECDSA time, 500 inputs",
    "appliance_ms_per_input_500": "appliance ms per input, 500 inputs",
    "appliance_ms_per_input_2000": "appliance ms per input, 2,000 inputs",
    "qr_35k_loss30_frames_pixels": "frames needed, 35 KB at 30 % loss, through pixels",
    "qr_35k_loss30_seconds_8fps": "seconds at 8 fps for the same transfer",
    "qr_ratio_loss0": "frames / fragments at 0 % loss (through pixels)",
    "decode_ms_720p": "ms to decode one 720p camera frame (default decoder)",
    "render_ms_frame": "ms to render one QR frame",
    "import_keys_per_s_1000": "keys imported per second, pool of 1,000",
    "cold_lookup_ms_per_key": "ms per cold key look-up",
    "audit_verify_entries_per_s": "audit entries verified per second",
    "first_frame_ms_500_inputs": "ms from the signed response to the first frame, 500 inputs",
    "backup_step_seconds.plan": "backup ceremony, seconds of step plan (no human time)",
    "backup_step_seconds.seed": "backup ceremony, seconds of step seed (no human time)",
    "backup_step_seconds.enrol": "backup ceremony, seconds of step enrol (no human time)",
    "backup_step_seconds.seal_write": "backup ceremony, seconds of step seal_write (no human time)",
    "backup_step_seconds.read_back": "backup ceremony, seconds of step read_back (no human time)",
    "backup_step_seconds.close": "backup ceremony, seconds of step close (no human time)",
    "backup_step_seconds.total": "backup ceremony, seconds in all (no human time)",
    "drill_step_seconds.plan": "restore drill, seconds of step plan (no human time)",
    "drill_step_seconds.collect": "restore drill, seconds of step collect (no human time)",
    "drill_step_seconds.rebuild": "restore drill, seconds of step rebuild (no human time)",
    "drill_step_seconds.compare": "restore drill, seconds of step compare (no human time)",
    "drill_step_seconds.restore": "restore drill, seconds of step restore (no human time)",
    "drill_step_seconds.wipe": "restore drill, seconds of step wipe (no human time)",
    "drill_step_seconds.total": "restore drill, seconds in all (no human time)",
}
