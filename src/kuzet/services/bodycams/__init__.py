"""Body-worn and dash cameras (docs/bodycams.md): ``units`` says who does what in a unit and what each user reaches;
``devices`` keeps the registry and the shifts; ``offload`` receives files (tus uploads and the watch folder) and
ingests them with their hash; ``recordings`` categorises, holds, searches and deletes by retention; ``runtime`` is what
``kuzet serve`` runs (the watch folder and the retention pass)."""
