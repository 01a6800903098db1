-- Willow Lane Community Garden: gardeners and their recorded harvests
CREATE TABLE gardeners (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  plot_number INTEGER NOT NULL,
  joined_year INTEGER NOT NULL,
  annual_fee REAL NOT NULL
);
CREATE TABLE harvests (
  id INTEGER PRIMARY KEY,
  gardener_id INTEGER NOT NULL REFERENCES gardeners(id),
  crop TEXT NOT NULL,
  weight_kg REAL NOT NULL,
  harvest_date TEXT NOT NULL
);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (1, 'Ingrid Halvorsen', 4, 2019, 45.0);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (2, 'Tomas Reyes', 9, 2021, 45.0);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (3, 'Priya Natarajan', 12, 2018, 60.0);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (4, 'Olu Adeyemi', 2, 2022, 30.0);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (5, 'Margot Leclerc', 17, 2020, 60.0);
INSERT INTO gardeners (id, name, plot_number, joined_year, annual_fee) VALUES (6, 'Kenji Watanabe', 21, 2023, 30.0);
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (1, 1, 'Tomatoes', 6.5, '2024-07-28');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (2, 3, 'Zucchini', 9.2, '2024-07-30');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (3, 1, 'Beans', 2.8, '2024-08-02');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (4, 2, 'Potatoes', 12.4, '2024-08-05');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (5, 5, 'Tomatoes', 4.1, '2024-08-06');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (6, 3, 'Carrots', 3.7, '2024-08-09');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (7, 6, 'Pumpkins', 15.0, '2024-09-14');
INSERT INTO harvests (id, gardener_id, crop, weight_kg, harvest_date) VALUES (8, 1, 'Kale', 1.9, '2024-09-20');
