"""What turns results into the book: the prose's numbers, the tables and figures, the GPU-hour estimate.

  prose        numbers into the book's prose (myst_nb.glue) and the phrases that read them
  plots        figures and captions shared by the chapters
  tables       the chapters' tables, rounded as the glued prose rounds
  readings     chapter 4's readings of its results: the tables it shows, the values its prose glues
  costs        GPU hours of a run at other sizes, from the token counts a smaller run measured
  profile_book the table of contents and introduction of another profile's book
  try_it       the "Try it" changes and the record of what each run cost and showed
  reruns       the whole study rerun elsewhere (other worlds, float kernels): which verdicts came back
"""
