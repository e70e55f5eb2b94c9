// Go baseline for the fan-out benchmark: gorilla/websocket in the shape of
// gorilla's chat example (one hub goroutine owning the rooms, a buffered
// send channel per client, a readPump and a writePump goroutine per client),
// with rooms added.
//
// A client joins the room named in its URL (/ws?room=R000). Every text
// message a client sends is a benchmark payload that starts with "@@" and a
// four-character room id ("@@R000|..."); the hub sends it to every client
// of that room, sender included, one WebSocket frame per message (or, with
// -coalesce, the chat example's newline-joined frames).
//
// Build offline with Debian's golang-go and golang-github-gorilla-websocket-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../../out/gohub .
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 512
	sendBuffer     = 256
)

var coalesce = flag.Bool("coalesce", false, "join queued messages into one frame with newlines, as the chat example does")

var newline = []byte{'\n'}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
}

type roomMessage struct {
	room string
	data []byte
}

// Hub maintains the rooms and broadcasts messages to their clients.
type Hub struct {
	rooms      map[string]map[*Client]bool
	broadcast  chan roomMessage
	register   chan *Client
	unregister chan *Client
}

func newHub() *Hub {
	return &Hub{
		rooms:      make(map[string]map[*Client]bool),
		broadcast:  make(chan roomMessage),
		register:   make(chan *Client),
		unregister: make(chan *Client),
	}
}

func (h *Hub) run() {
	for {
		select {
		case client := <-h.register:
			room := h.rooms[client.room]
			if room == nil {
				room = make(map[*Client]bool)
				h.rooms[client.room] = room
			}
			room[client] = true
		case client := <-h.unregister:
			if room := h.rooms[client.room]; room != nil {
				if _, ok := room[client]; ok {
					delete(room, client)
					close(client.send)
				}
			}
		case message := <-h.broadcast:
			room := h.rooms[message.room]
			for client := range room {
				select {
				case client.send <- message.data:
				default:
					close(client.send)
					delete(room, client)
				}
			}
		}
	}
}

// Client is a middleman between the websocket connection and the hub.
type Client struct {
	hub  *Hub
	conn *websocket.Conn
	room string
	send chan []byte
}

func (c *Client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		_, message, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if len(message) < 6 || message[0] != '@' || message[1] != '@' {
			continue
		}
		c.hub.broadcast <- roomMessage{room: string(message[2:6]), data: message}
	}
}

func (c *Client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(message)
			if *coalesce {
				n := len(c.send)
				for i := 0; i < n; i++ {
					w.Write(newline)
					w.Write(<-c.send)
				}
			}
			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func serveWs(hub *Hub, w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	if len(room) != 4 {
		http.Error(w, "room must be four characters", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	client := &Client{hub: hub, conn: conn, room: room, send: make(chan []byte, sendBuffer)}
	client.hub.register <- client
	go client.writePump()
	go client.readPump()
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any free one)")
	flag.Parse()
	hub := newHub()
	go hub.run()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWs(hub, w, r) })
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "ready on http://%s\n", listener.Addr().String())
	log.Fatal(http.Serve(listener, nil))
}
