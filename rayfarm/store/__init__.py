"""Everything that touches the database: schema, migrations, queries. SQL lives only here."""
