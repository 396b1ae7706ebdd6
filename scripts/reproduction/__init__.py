"""scripts/reproduce.py's parts: the run table (plans), the training of one run (training), DSG's
op accounting and Fig. 7 (dsg), DST's α sweep report and figures (sweep), and the main report (report)."""
