"""Reading and writing: the CRM extract, atomic files, databases, results, spreadsheets."""
