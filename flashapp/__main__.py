"""`python -m flashapp ...` runs the `flashapp` command, for installs where the script is not on PATH."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="flashapp")
